"""Every ``python`` code block of the README runs, as written, under the suite's configuration."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_code_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index):
    code = BLOCKS[index]
    assert "..." not in code.replace('"..."', ""), "placeholders are not runnable"
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": f"readme_{index}"})
