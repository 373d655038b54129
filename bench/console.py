"""Terminal output: rich tables that degrade to plain text when not on a terminal."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def print_table(headers: list[str], rows: list[list[str]], title: str | None = None,
                footnotes: list[str] | None = None) -> None:
    table = Table(title=title, show_lines=False, header_style="bold")
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i == 0 else "right" if _numeric_column(rows, i) else "left",
                         no_wrap=i == 0)
    for row in rows:
        table.add_row(*[escape(str(c)) for c in row])
    term = Console()
    # Piped output is read by tools and people later: don't wrap it to 80 columns.
    out = term if term.is_terminal else Console(width=200)
    out.print(table)
    for note in footnotes or []:
        out.print(escape(note), highlight=False)


def _numeric_column(rows: list[list[str]], i: int) -> bool:
    values = [str(r[i]).replace("±", "").replace("x", "").strip() for r in rows if str(r[i]).strip()]
    try:
        [float(v.split()[0]) for v in values]
        return bool(values)
    except ValueError:
        return False
