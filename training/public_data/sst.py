"""The Stanford Sentiment Treebank's five-class data (trainDevTestTrees_PTB.zip) as Parquet.

The archive holds `trees/{train,dev,test}.txt`, one sentence a line as a labelled Penn-Treebank tree,
`(3 (2 It) (4 (4 (2 's) ...)))`: every node carries a label from 0 (negative) to 4 (positive). A
sentence's label is its root's and its text the leaves joined by single spaces, tokens kept as the
treebank writes them (-LRB-, "does n't"): the `--treebank` preprocessing reads them that way. The
phrases, every node's words with its label, come from the training trees only, so the development
and test sentences stay unseen.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.output_names import LABEL, TEXT
from training.public_data.dataset import PublicDataError, PublicDataset

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SST5", "convert_sst5", "parse_tree"]

CLASSES = 5
_TOKEN = re.compile(r"[()]|[^\s()]+")
_SPLITS = ("train", "dev", "test")
PHRASES = "sst5_phrases.parquet"


def _sentences_file(split: str) -> str:
    return f"sst5_{split}.parquet"


def parse_tree(line: str) -> list[tuple[str, int]]:
    """(text, label) of every node of one tree, root first (pre-order); ValueError when it is not a tree."""
    leaves: list[str] = []
    nodes: list[list[int]] = []  # [label, first leaf, end leaf], in the order the nodes open
    open_nodes: list[int] = []
    tokens = _TOKEN.findall(line)
    expect_label = False
    for position, token in enumerate(tokens):
        if expect_label:
            if not token.isdigit() or int(token) >= CLASSES:
                raise ValueError(f"{token!r} is not a label 0-{CLASSES - 1}")
            open_nodes.append(len(nodes))
            nodes.append([int(token), len(leaves), -1])
            expect_label = False
        elif token == "(":
            if nodes and not open_nodes:
                raise ValueError("more than one tree")
            expect_label = True
        elif not open_nodes:
            raise ValueError(f"{token!r} outside the tree")
        elif token == ")":
            node = nodes[open_nodes.pop()]
            node[2] = len(leaves)
            if node[2] == node[1]:
                raise ValueError(f"a node without words before token {position + 1}")
        else:
            leaves.append(token)
    if expect_label or open_nodes or not nodes:
        raise ValueError("unbalanced brackets")
    return [(" ".join(leaves[first:end]), label) for label, first, end in nodes]


def convert_sst5(archive: Path) -> dict[str, pa.Table]:
    """sst5_{train,dev,test}.parquet (root sentences) and sst5_phrases.parquet (training phrases): text, label."""
    trees = {split: _parse_trees(archive, f"trees/{split}.txt", text) for split, text in _read_members(archive)}
    tables = {_sentences_file(split): _table([nodes[0] for nodes in trees[split]]) for split in _SPLITS}
    phrases: dict[str, int] = {}
    for nodes in trees["train"]:
        for text, label in nodes:
            phrases.setdefault(text, label)  # a phrase's label is the treebank's, the same wherever it occurs
    tables[PHRASES] = _table(list(phrases.items()))
    return tables


def _read_members(archive: Path) -> list[tuple[str, str]]:
    """(split, text of trees/SPLIT.txt) for every split, or the one-line reason the archive is not SST's."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            names = set(zipped.namelist())
            missing = [f"trees/{split}.txt" for split in _SPLITS if f"trees/{split}.txt" not in names]
            if missing:
                raise PublicDataError(f"{archive} has no {', '.join(missing)}; is it {SST5.archive}?")
            contents = [(split, zipped.read(f"trees/{split}.txt")) for split in _SPLITS]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise PublicDataError(f"{archive} is not a readable zip archive ({e}); is it {SST5.archive}?") from None
    try:
        return [(split, content.decode("utf-8")) for split, content in contents]
    except UnicodeDecodeError as e:
        raise PublicDataError(f"{archive}: the trees are not UTF-8 text ({e})") from None


def _parse_trees(archive: Path, member: str, text: str) -> list[list[tuple[str, int]]]:
    trees = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            trees.append(parse_tree(line))
        except ValueError as e:
            raise PublicDataError(f"{archive}: {member} line {number} is not a sentiment tree: {e}") from None
    if not trees:
        raise PublicDataError(f"{archive}: {member} holds no trees")
    return trees


def _table(rows: list[tuple[str, int]]) -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {TEXT: [text for text, _ in rows], LABEL: [label for _, label in rows]},
        schema=pa.schema([(TEXT, pa.string()), (LABEL, pa.int8())]),
    )


SST5 = PublicDataset(
    name="sst5",
    description="Stanford Sentiment Treebank, five classes (Socher et al. 2013): sentences and training phrases",
    url="https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip",
    sha256="5c613a4f673fc74097d523a2c83f38e0cc462984d847b82c7aaf36b01cbbbfcc",
    archive="trainDevTestTrees_PTB.zip",
    outputs=(*(_sentences_file(split) for split in _SPLITS), PHRASES),
    convert=convert_sst5,
)
