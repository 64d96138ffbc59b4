"""README's option table is the option table: every option, its defaults and notes."""

import re
from pathlib import Path

from pylive.options import OPTIONS, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_option_table_is_current() -> None:
    text = README.read_text()
    m = re.search(r"(?s)<!-- options:begin -->\n(.*)<!-- options:end -->", text)
    assert m, "README.md lost its option table markers"
    assert m[1] == markdown_table(), "run `make readme-options`"
    for o in OPTIONS:
        assert f"| `{o.name}` |" in m[1]
