from sqlalchemy.orm import Session

from .models import Article, Car, Manager, Tag
from .support import versions


def test_everything_versions(session: Session) -> None:
    session.add_all(
        [
            Article(id=1, title="a"),
            Tag(owner="x", code=1, label="l"),
            Manager(id=1, name="m", budget=3),
            Car(id=1, name="c", doors=4),
        ]
    )
    session.commit()
    assert [v.operation for v in versions(session, Article.__history__, id=1)] == ["insert"]
    assert versions(session, Car.__history__, id=1)[0].doors == 4
    assert versions(session, Manager.__history__, id=1)[0].budget == 3
    assert versions(session, Tag.__history__, owner="x", code=1)[0].label == "l"
