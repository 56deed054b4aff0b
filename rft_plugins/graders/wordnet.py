"""WordNet for METEOR's synonym matches, found on this machine, never downloaded from a hub.

Where it looks, first found wins:

1. ``$WNSEARCHDIR`` (WordNet's own variable): a directory of WordNet 3.0 database files;
2. NLTK's ``wordnet`` corpus, if someone installed it into an ``nltk_data`` directory;
3. ``/usr/share/wordnet``: Debian's ``wordnet-base`` package (``make install`` adds it where
   ``apt-get`` works).

Debian's files are the WordNet 3.0 database without ``lexnames`` (a fixed table of the 45
lexicographer file names, which WordNet's C library compiles in) and without ``index.sense``.
NLTK's reader needs the first and, to map WordNet versions for its multilingual (OMW) functions,
the second. ``DictWordNetReader`` supplies the table from ``LEXNAMES`` (copied from the
``lexnames(5WN)`` manual page shipped in the same package) and skips the version mapping, which
METEOR never uses.

When no WordNet is found, ``load_wordnet()`` returns None after one warning; METEOR then matches
exact words and Porter stems only.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")

#: The WordNet 3.0 lexicographer files, numbered from 00 (``lexnames(5WN)``).
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
#: The database files METEOR's synonym lookups read.
REQUIRED_FILES: tuple[str, ...] = tuple(
    f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")
) + tuple(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv"))

_lock = threading.Lock()
_loaded = False
_wordnet: Any = None
_source: str | None = None


def lexnames_text() -> str:
    """The ``lexnames`` file as WordNet writes it: number, name, syntactic category."""
    return "".join(
        f"{number:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for number, name in enumerate(LEXNAMES)
    )


def _dict_reader_class() -> type:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class DictWordNetReader(WordNetCorpusReader):
        """NLTK's reader over a bare WordNet 3.0 ``dict`` directory (Debian's layout)."""

        def open(self, file: str) -> Any:
            if file == "lexnames" and not os.path.exists(os.path.join(self._root.path, "lexnames")):
                return io.StringIO(lexnames_text())
            return super().open(file)

        def map_wn(self, version: str = "wordnet") -> None:
            return None  # maps other WordNet versions for OMW lookups; needs index.sense

    return DictWordNetReader


def read_wordnet_dir(directory: str | Path) -> Any:
    """A WordNet reader over ``directory``; raises ``FileNotFoundError`` when files are missing."""
    import nltk

    directory = Path(directory).resolve()
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} is not a WordNet 3.0 database (missing {', '.join(missing)})")
    # NLTK (>= 3.9) only opens files under its data paths: authorise this one directory.
    if str(directory) not in map(str, nltk.data.path):
        nltk.data.path.append(str(directory))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return _dict_reader_class()(str(directory), None)


def _nltk_wordnet() -> Any:
    import nltk

    for resource in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        try:
            nltk.data.find(resource)
        except LookupError:
            continue
        from nltk.corpus import wordnet

        wordnet.get_version()  # loads the lazy corpus now, so a broken one fails here
        return wordnet
    return None


def _find() -> tuple[Any, str | None]:
    problems = []
    candidates: list[tuple[str, Any]] = []
    if os.environ.get("WNSEARCHDIR"):
        candidates.append((f"$WNSEARCHDIR={os.environ['WNSEARCHDIR']}", lambda: read_wordnet_dir(os.environ["WNSEARCHDIR"])))
    candidates.append(("nltk_data wordnet", _nltk_wordnet))
    candidates.append((str(DEBIAN_WORDNET_DIR), lambda: read_wordnet_dir(DEBIAN_WORDNET_DIR)))
    for source, load in candidates:
        try:
            reader = load()
        except Exception as error:  # a broken candidate is reported, then the next one is tried
            problems.append(f"{source}: {error}")
            continue
        if reader is not None:
            return reader, source
    logger.warning(
        "WordNet not found (%s); METEOR matches exact words and stems only, without synonyms. "
        "Install it with `apt-get install wordnet-base` or point $WNSEARCHDIR at a WordNet 3.0 dict/.",
        "; ".join(problems) or "no candidate",
    )
    return None, None


def load_wordnet() -> Any:
    """The process-wide WordNet reader, loaded once (about 2 s); None if there is none."""
    global _loaded, _wordnet, _source
    with _lock:
        if not _loaded:
            _wordnet, _source = _find()
            _loaded = True
        return _wordnet


def wordnet_source() -> str | None:
    """Where the loaded WordNet came from (None before loading or when none was found)."""
    return _source


def forget_wordnet() -> None:
    """Drop the cached reader so the next ``load_wordnet()`` searches again (for tests)."""
    global _loaded, _wordnet, _source
    with _lock:
        _loaded, _wordnet, _source = False, None, None
