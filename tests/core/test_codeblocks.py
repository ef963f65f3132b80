"""Fenced code blocks of an answer: what `%chat code` and the panel's Copy take."""

from __future__ import annotations

import pytest

from nbchat.core.codeblocks import CodeBlock, extract_code_blocks, select_code
from nbchat.core.errors import NbChatError

ANSWER = """Try this:

```python
import pandas as pd
df = pd.read_csv("x.csv")  # {braces} stay
```

Then, indented inside a list:

1. Run
   ~~~~ bash extra words
   pip install pandas
     two-space indent kept
   ~~~~

and ```inline``` is not a block.

````markdown
```python
nested = True
```
````
"""


def test_blocks_are_found_in_order_with_their_language_and_exact_text():
    assert extract_code_blocks(ANSWER) == [
        CodeBlock("python", 'import pandas as pd\ndf = pd.read_csv("x.csv")  # {braces} stay'),
        CodeBlock("bash", "pip install pandas\n  two-space indent kept"),
        CodeBlock("markdown", "```python\nnested = True\n```"),
    ]


def test_an_unclosed_fence_runs_to_the_end_of_the_answer():
    assert extract_code_blocks("text\n```\nx = 1\n\ny = 2") == [CodeBlock("", "x = 1\n\ny = 2")]


def test_a_shorter_or_different_fence_does_not_close_a_block():
    text = "````\n```\n~~~~\n````"
    assert extract_code_blocks(text) == [CodeBlock("", "```\n~~~~")]


def test_the_last_block_is_the_default_and_numbers_count_from_one():
    assert select_code(ANSWER) == "```python\nnested = True\n```"
    assert select_code(ANSWER, 2).startswith("pip install")


def test_all_joins_every_block_with_a_blank_line():
    joined = select_code("```\na\n```\ntext\n```\nb\n```", join_all=True)
    assert joined == "a\n\nb"


def test_no_block_and_a_number_out_of_range_are_clear_errors():
    with pytest.raises(NbChatError, match="no code block"):
        select_code("Just words, no code.")
    with pytest.raises(NbChatError, match=r"has 3 code blocks: there is no block 4\. Use a number from 1 to 3"):
        select_code(ANSWER, 4)
    with pytest.raises(NbChatError, match="has 1 code block: there is no block 0"):
        select_code("```\nx\n```", 0)
