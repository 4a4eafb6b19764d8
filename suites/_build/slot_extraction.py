"""Build suites/slot-extraction from the SNIPS NLU benchmark (2017-06 custom intent engines): slot filling.

Run from the repo root: `python suites/_build/slot_extraction.py [--source ../shared/datasets]`.
train = the 7 `train_<Intent>_full.json` files, test = the 7 `validate_<Intent>.json` files (the usual SNIPS
13,784 / 700 setup), dev = a seeded carve of 100 utterances per intent from train. Cleaning exists because the
harness refuses duplicates and train/test contamination; everything dropped is listed in dropped-items.jsonl.
"""

from __future__ import annotations

import json
import random

from _common import SEED, Flow, dump_yaml, jsonl, normalize, parse_args, sha256, write_folder

NAME = "slot-extraction"
INTENTS = (
    "AddToPlaylist", "BookRestaurant", "GetWeather", "PlayMusic", "RateBook", "SearchCreativeWork",
    "SearchScreeningEvent",
)
DEV_PER_INTENT = 100
INSTRUCTION = (
    "You parse requests made to a voice assistant (music and playlists, weather, restaurant bookings, book "
    "ratings, creative works, movie showtimes). Extract every slot mentioned in the request, copying each value "
    "exactly as it is written in the request."
)
REPO_URL = "https://github.com/sonos/nlu-benchmark"
COMMIT = "b86ac7f1577868c42158d0dec77db50956046696"
ATTRIBUTION = (
    'Coucke A. et al. (2018), "Snips Voice Platform: an embedded Spoken Language Understanding system for '
    'private-by-design voice interfaces", arXiv:1805.10190. SNIPS NLU benchmark by Snips (now Sonos), CC0 1.0.'
)
VALUE = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
MOJIBAKE = ("Ã", "â€", "Â")


def decode(data: bytes) -> tuple[str, str]:
    """(text, how): UTF-8 first; then UTF-8 whose astral characters are written as surrogate pairs (CESU-8)."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        # PlayMusic's full train file is UTF-8 except one emoji encoded as two 3-byte surrogates; decoding it as
        # Latin-1 would turn every accented name into mojibake ("MÃºsica"), so rejoin the pair instead
        text = data.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass").decode("utf-16")
        text.encode("utf-8")  # no lone surrogate left
        return text, "utf-8 with CESU-8 surrogate pairs rejoined"
    except UnicodeError:
        return data.decode("latin-1"), "latin-1"


def read(path) -> tuple[list[list[dict]], str]:
    text, how = decode(path.read_bytes())
    bad = [m for m in MOJIBAKE if m in text]
    if bad:
        raise SystemExit(f"{path}: decoded as {how} but still contains mojibake {bad}; check the encoding")
    (utterances,) = json.loads(text).values()
    return [u["data"] for u in utterances], how


def convert(segments: list[dict]) -> tuple[str, dict]:
    """(utterance, {slot: value or [values]}); slots keep their order of first appearance."""
    utterance = "".join(s["text"] for s in segments).strip()
    slots: dict = {}
    for seg in segments:
        if "entity" not in seg:
            continue
        value = seg["text"].strip()
        if not value or value not in utterance:
            raise SystemExit(f"slot {seg['entity']!r} value {seg['text']!r} is not in {utterance!r}")
        slot = seg["entity"]
        if slot not in slots:
            slots[slot] = value
        elif isinstance(slots[slot], list):
            slots[slot].append(value)
        else:
            slots[slot] = [slots[slot], value]
    return utterance, slots


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    src = args.source / "snips"
    decoding, files_sha = {}, {}
    raw = {"train": [], "test": []}
    for intent in INTENTS:
        for split, name in (("train", f"train_{intent}_full.json"), ("test", f"validate_{intent}.json")):
            path = src / intent / name
            utterances, decoding[f"{intent}/{name}"] = read(path)
            files_sha[f"{intent}/{name}"] = sha256(path)
            for index, segments in enumerate(utterances):
                text, slots = convert(segments)
                raw[split].append({"intent": intent, "file": f"{intent}/{name}", "index": index, "text": text,
                                   "slots": slots, "raw_text": "".join(s["text"] for s in segments)})
    stripped = sum(r["raw_text"] != r["text"] for r in raw["train"] + raw["test"])

    dropped = []
    test, test_seen = [], {}
    for r in raw["test"]:
        key = normalize(r["text"])
        if key in test_seen:
            dropped.append(record(r, "test_duplicate", test_seen[key]))
        else:
            test_seen[key] = r
            test.append(r)
    train, train_seen = [], {}
    for r in raw["train"]:
        key = normalize(r["text"])
        if key in test_seen:
            dropped.append(record(r, "train_overlapping_test", test_seen[key]))
        elif key in train_seen:
            dropped.append(record(r, "train_duplicate", train_seen[key]))
        else:
            train_seen[key] = r
            train.append(r)

    rng = random.Random(SEED)
    dev_ids = set()
    for intent in INTENTS:
        members = [id(r) for r in train if r["intent"] == intent]
        rng.shuffle(members)
        dev_ids.update(members[:DEV_PER_INTENT])
    dev = [r for r in train if id(r) in dev_ids]
    train = [r for r in train if id(r) not in dev_ids]

    fields = sorted({slot for r in raw["train"] + raw["test"] for slot in r["slots"]})
    counts = {"train": len(train), "dev": len(dev), "test": len(test)}
    by_reason = {reason: [d for d in dropped if d["reason"] == reason]
                 for reason in ("train_duplicate", "train_overlapping_test", "test_duplicate")}
    cleaning = {
        "dropped": {
            "train_duplicates": len(by_reason["train_duplicate"]),
            "train_overlapping_test": len(by_reason["train_overlapping_test"]),
            "test_duplicates": len(by_reason["test_duplicate"]),
        },
        "train_duplicates_with_different_slots": sum(not d["same_slots"] for d in by_reason["train_duplicate"]),
        "note": (
            "Texts compared after folding case, whitespace and punctuation (near_fold); the first occurrence is kept (test is cleaned "
            "first, then train against test and itself). Utterances and slot values are stripped of "
            f"leading/trailing whitespace ({stripped} utterances changed). Every dropped item is listed in "
            f"dropped-items.jsonl. dev = {DEV_PER_INTENT} de-duplicated train utterances per intent "
            f"(random.Random({SEED}))."
        ),
        "dropped_items": {
            "train_overlapping_test": [brief(d) for d in by_reason["train_overlapping_test"]],
            "test_duplicates": [brief(d) for d in by_reason["test_duplicate"]],
            "train_duplicates": "see dropped-items.jsonl",
        },
    }
    suite = {
        "name": NAME,
        "version": "1.1.0",
        "task": "extraction",
        "description": "Extract the slots (39 types) of a voice-assistant request (SNIPS, 7 intents).",
        "instruction": INSTRUCTION,
        "output": {
            "kind": "json",
            "schema": {
                "type": "object",
                "properties": {f: Flow(VALUE) for f in fields},
                "additionalProperties": Flow(VALUE),
            },
            "fields": fields,
            "grounded": True,
        },
        "scorers": ["format_compliance", "hallucination_rate", "task_accuracy", "field_precision", "field_recall",
                    "field_f1"],
        "source": {
            "dataset": "snips (nlu-benchmark, 2017-06-custom-intent-engines)",
            "url": REPO_URL,
            "commit": COMMIT,
            "license": "CC0 1.0",
            "attribution": ATTRIBUTION,
            "files_sha256": files_sha,
            "decoding": {k: v for k, v in decoding.items() if v != "utf-8"},
            "build": "python suites/_build/slot_extraction.py",
            "counts": counts,
        },
        "cleaning": cleaning,
    }

    def rows(items):
        return [{"input": r["text"], "output": r["slots"]} for r in items]

    write_folder(
        args.out / NAME,
        {
            "suite.yaml": "# Generated by suites/_build/slot_extraction.py; edit that script, not this file.\n"
            + dump_yaml(suite),
            "train.jsonl": jsonl(rows(train)),
            "dev.jsonl": jsonl(rows(dev)),
            "test.jsonl": jsonl(rows(test)),
            "dropped-items.jsonl": jsonl(dropped),
            "SOURCE.md": source_md(counts, cleaning, len(raw["train"]), len(raw["test"]), stripped, decoding,
                                   len(fields), by_reason),
            "LICENSE": (src / "LICENSE").read_bytes(),
        },
    )
    print(f"{NAME}: {counts}; dropped {cleaning['dropped']}; {len(fields)} slot types")


def record(r: dict, reason: str, kept: dict) -> dict:
    return {
        "reason": reason,
        "file": r["file"],
        "index": r["index"],
        "text": r["raw_text"],
        "slots": r["slots"],
        "same_as": {"file": kept["file"], "index": kept["index"], "text": kept["raw_text"]},
        "same_slots": r["slots"] == kept["slots"],
    }


def brief(d: dict) -> dict:
    return {"file": d["file"], "index": d["index"], "text": d["text"],
            "same_as": f"{d['same_as']['file']}[{d['same_as']['index']}]"}


def source_md(counts, cleaning, n_train, n_test, stripped, decoding, n_fields, by_reason) -> str:
    def lines(reason):
        return "\n".join(
            f"  - `{d['file']}`[{d['index']}] `{json.dumps(d['text'], ensure_ascii=False)}`, same as "
            f"`{d['same_as']['file']}`[{d['same_as']['index']}] "
            f"`{json.dumps(d['same_as']['text'], ensure_ascii=False)}`"
            for d in by_reason[reason]
        )

    unusual = "\n".join(f"  - `{k}`: {v}" for k, v in decoding.items() if v != "utf-8") or "  - none"
    d = cleaning["dropped"]
    return f"""# slot-extraction: origin and cleaning

- Dataset: SNIPS NLU benchmark, {REPO_URL}, commit `{COMMIT}`, folder `2017-06-custom-intent-engines`
  (via ../shared/datasets/snips): `<Intent>/train_<Intent>_full.json` and `<Intent>/validate_<Intent>.json` for
  the 7 intents {', '.join(INTENTS)}.
- License: CC0 1.0 Universal (text in `LICENSE`). The benchmark README asks that any publication based on these
  datasets cite: {ATTRIBUTION}
- Build: `python suites/_build/slot_extraction.py --source ../shared/datasets` (seed {SEED}, stdlib + PyYAML).

## Format
Each line: `{{"input": <utterance>, "output": {{<slot>: <value>, ...}}}}`. The utterance is the concatenation of the
`text` of its segments; each segment with an `entity` is a slot whose value is the segment text (stripped). A slot
that occurs more than once in one utterance maps to a list of its values; slots appear in order of first
appearance; an utterance without slots has `{{}}`. The contract (`suite.yaml`) is `kind: json`, `grounded: true`
(every value occurs in the input), with the {n_fields} slot types seen as `fields`. The intent is not part of the
output.

## Decoding
All files are UTF-8 except:
{unusual}
That file is *not* Latin-1: its only invalid UTF-8 bytes are one emoji (U+1F355) written as two UTF-8-encoded
surrogates (CESU-8), `ED A0 BC ED BD 95` at byte 150732. Decoding the whole file as Latin-1 would garble every
accented name in it (e.g. `MÃºsica` instead of `Música`), so the surrogates are rejoined and the rest is read
as UTF-8 (`Música Da Série De Filmes`, `Noctámbulo`, `Burhøns`, `Kurutta Taiyō`, `Pop Punk Perfection 🍕`).

## Splits
| split | utterances | from |
| --- | --- | --- |
| train | {counts['train']} | the 7 train_full files ({n_train}) minus overlap with test, minus duplicates, minus dev |
| dev | {counts['dev']} | {DEV_PER_INTENT} per intent from the cleaned train, `random.Random({SEED})` |
| test | {counts['test']} | the 7 validate files ({n_test}) minus test-internal duplicates |

## Cleaning (what was dropped)
Texts are compared after folding case, whitespace and punctuation (`harness.core.text.near_fold`, the key the
harness refuses near-duplicates between splits by, so `auto top-up?` and `Auto top up` are one text);
the first occurrence is kept. Test is cleaned first, then train against test and against itself.
Leading/trailing whitespace was stripped from utterances ({stripped} changed, mostly a trailing `\\n`) and values.
Indexes are 0-based positions in the source file's utterance list. Every dropped item (with its slots) is in
`dropped-items.jsonl`.

- Test-internal duplicates dropped: {d['test_duplicates']}
{lines('test_duplicate')}
- Train utterances whose text is also in test, dropped: {d['train_overlapping_test']}
{lines('train_overlapping_test')}
- Train-internal duplicates dropped: {d['train_duplicates']} ({cleaning['train_duplicates_with_different_slots']} of
  them annotated differently from the kept copy); listed in `dropped-items.jsonl`.
"""


if __name__ == "__main__":
    main()
