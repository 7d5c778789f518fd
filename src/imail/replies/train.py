"""Build the shipped reply model from the shipped corpus: `python -m imail.replies.train`.

Run it after changing `imail/replies/data/train.jsonl` (tests check that the model names the corpus it was
trained on). Deterministic: the same corpus gives the same file.
"""

from __future__ import annotations

import time

from imail.replies.classifier import fit_model, load_examples, model_file, training_file


def main() -> None:
    started = time.perf_counter()
    examples = load_examples(training_file())
    model = fit_model(examples)
    data = model.to_bytes()
    model_file().write_bytes(data)
    print(
        f"{model_file()}: {len(examples)} examples, {len(model.weights)} features kept, "
        f"temperature {model.temperature}, {len(data) // 1024} KiB, {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
