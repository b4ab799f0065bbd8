"""Probe where a normalised model's value step should add ``delta`` (information for the next step, not a gate).

    python scripts/probe_value_site.py --model gemma-3-270m --hparams <file.json> --output <folder>
                                       [--methods MEMIT] [--batch-size 14] [--seed 0]

Gemma 3 normalises the MLP output before the residual stream (``post_feedforward_layernorm``). The package's value
step added ``delta_i`` to the last edited layer's MLP output *before* that norm when this probe was made
(``ValueSettings.site="mlp"`` still does; on this probe's evidence the default site is now "residual"), so a target
value ``z_i`` was one that layer alone can make: the norm's outputs lie on one ellipsoid, which bounds how far one
layer moves the residual stream. This probe writes G1's own batches (the same draw as ``scripts/calibrate.py --parts
write``: the study's facts, the tuning split left out, one batch per language) with one change: the value step adds
``delta_i`` to the residual stream after block L, as for a model without the norm (Llama): a copy of the
hyperparameter file with ``values.site`` "residual", written beside the results as ``hparams.json``. The write is
the package's own: MEMIT and AlphaEdit spread the residual change over the band, each layer's share carried into
its MLP output through its norm (``model.architecture.residual_to_memory``). Nothing else changes; compare with the G1
record of the same hyperparameter file, batch for batch.

Writes ``calibration.json`` (G1's claims over the methods run, ``written_with``, ``probe``, provenance) and
``write.csv`` under ``--output``, in the layout ``study.real_llm_chapter.write_diagnostics_reading`` reads.
About 2.5 minutes per method and language on Gemma-3-270M on 2 cores with 100 value steps (30 minutes in
all; the package's value step took 43).
"""

from __future__ import annotations

import json
from pathlib import Path

from langedit_mini.interface.arguments import add_batch, add_methods, batch_from, study_parser, testbed_from

PROBE = {
    "value_site": "residual",
    "meaning": "the value step adds delta to the residual stream after block L (not to the MLP output before "
    "its norm); the write, the scores and the batches are the package's",
    "script": "scripts/probe_value_site.py",
}


def residual_hparams(hparams: str, folder: Path) -> Path:
    """A copy of the hyperparameter file ``hparams`` (a model name or a .json path) whose value step adds ``delta``
    to the residual stream (``values.site`` "residual"), written as ``folder/hparams.json``; everything else is the
    file's. A file that already asks for the residual site is an error: the probe would be G1's own write."""
    from langedit_mini.editing.defaults import HPARAMS_DIRECTORY, MODEL_NAMES, load_hparams

    shared, _ = load_hparams(hparams)  # a name or path it cannot read is its error
    if shared["values"].site == "residual":
        raise ValueError(
            f"{hparams}: the value step already adds delta to the residual stream (values.site 'residual'); "
            "the probe would be G1's own write (scripts/calibrate.py --parts write)"
        )
    path = HPARAMS_DIRECTORY / f"{hparams}.json" if str(hparams) in MODEL_NAMES else Path(hparams)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["values"] = dict(data.get("values", {})) | {"site": "residual"}
    data["note"] = f"{path.name} with values.site 'residual' (scripts/probe_value_site.py). " + data.get("note", "")
    folder.mkdir(parents=True, exist_ok=True)
    written = folder / "hparams.json"
    written.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return written


def main(argv=None) -> dict:
    from langedit_mini.model.architecture import detect_architecture
    from langedit_mini.study.calibration import WRITE_METHODS, calibrate

    parser = study_parser(__doc__, settings=False)
    add_batch(parser)
    add_methods(parser, default=WRITE_METHODS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.output is None:
        parser.error("--output is required: a probe never writes over a calibration's own folder")
    unknown = sorted(set(args.methods) - set(WRITE_METHODS))
    if unknown:
        parser.error(f"the probe writes with {', '.join(WRITE_METHODS)} only, got {unknown}")
    testbed = testbed_from(parser, args)
    if detect_architecture(testbed.model).mlp_out_norm is None:
        parser.error(f"{testbed.name} has no norm after its MLP output: its value step already adds delta there")
    try:
        testbed.hparams = str(residual_hparams(testbed.hparams, Path(args.output)))
    except (ValueError, FileNotFoundError) as error:
        parser.error(f"--hparams: {error}")
    batch = batch_from(parser, args, testbed)
    # G1's write part, as scripts/calibrate.py --parts write --no-batch-of-100 makes it
    return calibrate(
        testbed,
        Path(args.output),
        **batch,
        seed=args.seed,
        parts=["write"],
        batch_of_100=False,
        methods=args.methods,
        probe=PROBE,
    )


if __name__ == "__main__":
    main()
