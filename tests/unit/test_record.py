import pytest

from pylive.record import FrozenInstanceError, field, fields, mutable_record, record


@record
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = field(default=())
    seen: list[int] = field(default_factory=list)


def test_init_defaults_and_factories() -> None:
    p = Point(1)
    assert (p.x, p.y, p.tags, p.seen) == (1, 0, (), [])
    assert Point(1).seen is not Point(1).seen
    assert Point(1, y=2).y == 2 and Point(x=3).x == 3
    assert fields(p) == ("x", "y", "tags", "seen")


def test_value_semantics() -> None:
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(2, 1)
    assert Point(1, 2) != (1, 2)
    assert repr(Point(1)) == "Point(x=1, y=0, tags=(), seen=[])"


def test_hash_of_hashable_records() -> None:
    @record
    class P:
        a: int
        b: str = "x"

    assert hash(P(1)) == hash(P(1, "x")) and len({P(1), P(1), P(2)}) == 2


def test_frozen_and_arguments_checked() -> None:
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing argument 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected arguments z"):
        Point(1, z=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 4 arguments"):
        Point(1, 2, (), [], 5)  # type: ignore[call-arg]


def test_post_init_runs_after_the_fields_are_set() -> None:
    @record
    class Span:
        start: int
        end: int

        def __post_init__(self) -> None:
            if self.end < 0:
                object.__setattr__(self, "end", self.start)

    assert Span(3, -1) == Span(3, 3) and Span(1, 2).end == 2


def test_mutable_record() -> None:
    @mutable_record
    class Box:
        name: str
        items: dict[str, int] = field(default_factory=dict)
        label: str = ""

    b = Box("a")
    b.label = "x"
    b.items["k"] = 1
    assert b == Box("a", {"k": 1}, "x") and Box("a").items is not Box("a").items
    assert repr(b) == "Box(name='a', items={'k': 1}, label='x')"
    with pytest.raises(TypeError, match="unhashable"):
        hash(b)
