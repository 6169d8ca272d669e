"""The book's temperature readings (chapters 5 and 6), without torch.

Here, not in ``_data``, so the web layer can hand them to the page (``GET /api/kinds``) and the
charts can draw the points while a run on them is still going.
"""

from __future__ import annotations

# Celsius readings and the matching readings of an unknown unit (the book's listing 5.x).
BOOK_T_C = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
BOOK_T_U = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]


def book_pairs() -> list[list[float]]:
    """The book's readings as [t_u, t_c] pairs: the ``data`` a run uses when it is given none."""
    return [[u, c] for u, c in zip(BOOK_T_U, BOOK_T_C)]
