from html.parser import HTMLParser

from bench.study.document import Bullets, Figure, Heading, Para, Table, to_html, to_markdown

BLOCKS = [Heading("Study", 1), Para("a < b & c"), Bullets(("one", "two")),
          Table(("model", "ms"), (("S0", "1.2"), ("a|b", "3")), "note"), Figure("x.png", "cap")]


def test_markdown():
    md = to_markdown(BLOCKS)
    assert md.startswith("# Study\n")
    assert "| model | ms |\n|---|---|\n| S0 | 1.2 |\n| a\\|b | 3 |" in md
    assert "- one\n- two" in md and "![cap](x.png)" in md


def test_html_is_well_formed_and_escaped():
    page = to_html(BLOCKS, "t")
    assert "a &lt; b &amp; c" in page and "<img src='x.png'" in page

    class Check(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack = []

        def handle_starttag(self, tag, attrs):
            if tag not in ("meta", "img"):
                self.stack.append(tag)

        def handle_endtag(self, tag):
            assert self.stack.pop() == tag

    c = Check()
    c.feed(page)
    assert c.stack == []
