"""The classifier commands of `yimi-bot`: train, retrain (from the corrections made in chat),
lexicon suggest."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:
    from bot.classify.evaluation import Correction


NEEDS_TRAIN_EXTRA = "训练需要 train 依赖：pip install -e '.[train]' ({})"


def _corrections(settings: Settings) -> list[Correction]:
    """The routings that coordinators and firms corrected in chat."""
    from bot.classify.evaluation import Correction
    from bot.storage.db import Database

    async def read() -> list[Correction]:
        db = await Database.at(settings.database_path, settings.database_dsn)
        try:
            async with db.read() as repo:
                rows = await repo.tickets.corrections()
        finally:
            await db.close()
        return [Correction(text=t, predicted=p, final=f) for t, p, f in rows]

    return asyncio.run(read())


def suggest(settings: Settings) -> int:
    from bot.classify.evaluation import run_suggest

    return run_suggest(_corrections(settings), sys.stdout)


def retrain(settings: Settings, out: Path | None, *, apply: bool) -> int:
    """Train on the training sets plus the corrections; show what changes before writing."""
    from bot.classify import training
    from bot.classify.classifier import Classifier
    from bot.classify.evaluation import load_items
    from bot.classify.model import DEFAULT_MODEL

    extra = [
        training.Example(c.text, c.final, "corrections")
        for c in _corrections(settings)
        if c.final != c.predicted
    ]
    print(f"{len(extra)} corrections made in chat become training examples")
    current = Classifier()
    base = current.with_model(None)
    meta = current.model.meta if current.model else {}
    try:
        model = training.fit(
            base,
            training.load_sets() + extra,
            c=float(meta.get("c", training.DEFAULT_C)),
            lexicon_weight=float(meta.get("lexicon_weight", training.DEFAULT_LEXICON_WEIGHT)),
        )
    except ImportError as exc:
        print(NEEDS_TRAIN_EXTRA.format(exc), file=sys.stderr)
        return 2
    new = base.with_model(model)
    print("on the blind probes (reported, never tuned on):")
    training.compare(current, new, load_items(training.DATA / training.BLIND_SET), sys.stdout)
    if extra:
        print("on the corrections themselves:")
        items = [{"id": n, "text": e.text, "labels": [e.label]} for n, e in enumerate(extra, 1)]
        training.compare(current, new, items, sys.stdout)
    if not apply:
        print("nothing written: run again with --apply to write the model")
        return 0
    target = out or DEFAULT_MODEL
    training.dump(model, target)
    print(f"written: {target}")
    return 0


def train(out: Path | None, *, search: bool) -> int:
    from bot.classify import training
    from bot.classify.classifier import Classifier
    from bot.classify.model import DEFAULT_MODEL

    try:  # scikit-learn is imported only when fitting
        training.run_train(
            Classifier(model=None), sys.stdout, path=out or DEFAULT_MODEL, search=search
        )
    except ImportError as exc:
        print(NEEDS_TRAIN_EXTRA.format(exc), file=sys.stderr)
        return 2
    return 0
