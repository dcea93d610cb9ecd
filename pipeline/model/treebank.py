"""Penn-Treebank text back to ordinary text, so treebank-trained models read users' text the same way.

The Stanford Sentiment Treebank (and the Rotten Tomatoes phrases of the five-class tutorial) is
tokenized the Penn-Treebank way: "does n't", "film 's", -LRB- for "(", \\/ for "/", `` and '' for
quotes. Users send "doesn't" and "(". These ordered RE2 rewrites, run before the rest of the
cleaning, join the split clitics back onto their word and restore the escaped characters, so both
forms become the same tokens ("does n't" and "doesn't" are both the token "doesn't"), whichever
the model sees. On ordinary text they change only "cannot" (the treebank writes it "can not").
"""

# (pattern, replacement), in order; RE2 syntax. \w and \b are ASCII, which is what the clitics need.
TREEBANK_RULES: tuple[tuple[str, str], ...] = (
    (r"-LRB-", "("),
    (r"-RRB-", ")"),
    (r"-LSB-", "["),
    (r"-RSB-", "]"),
    (r"-LCB-", "{"),
    (r"-RCB-", "}"),
    (r"\\/", "/"),
    (r"\\\*", "*"),
    (r"``", '"'),
    (r"''", '"'),
    # Clitics back onto their word: "does n't" -> "doesn't", "ca n't" -> "can't", "wo n't" -> "won't",
    # "film 's" -> "film's", "I 'm" -> "I'm".
    (r"(?i)(\w) (n't)\b", r"\1\2"),
    (r"(?i)(\w) ('s|'re|'ve|'ll|'d|'m)\b", r"\1\2"),
    # The treebank splits "cannot" and "gonna": make ordinary text match.
    (r"(?i)\bcannot\b", "can not"),
    (r"(?i)\b(gon|wan) (na)\b", r"\1\2"),
    # A phrase that starts with the clitic ("n't work") keeps its negation as a word.
    (r"(?i)(^|\s)n't\b", r"\1not"),
)
