"""Contraction expansion rules (the multi-class tutorial's idea), as ordered regex rewrites.

They run on lower-cased text inside pyarrow's RE2 engine, one vectorized pass per rule, so expansion
costs a fixed number of array passes rather than a Python call per word. Irregular forms come
first ("won't" must not become "wo not"), then the regular suffixes.
"""

# (pattern, replacement): RE2 syntax; \b is an ASCII word boundary, which is what English needs.
CONTRACTION_RULES: tuple[tuple[str, str], ...] = (
    (r"\bwon't\b", "will not"),
    (r"\bcan't\b", "can not"),
    (r"\bshan't\b", "shall not"),
    (r"\bain't\b", "is not"),
    (r"\blet's\b", "let us"),
    (r"\by'all\b", "you all"),
    (r"\b(it|that|there|here|what|who|where|he|she|how)'s\b", r"\1 is"),
    (r"n't\b", " not"),
    (r"'re\b", " are"),
    (r"'ve\b", " have"),
    (r"'ll\b", " will"),
    (r"'d\b", " would"),
    (r"'m\b", " am"),
)
