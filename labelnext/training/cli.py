"""The command line of ``python train.py``: train the base model and save it as a run folder.

``python train.py`` trains the default run ``models/500_train/`` on the embedded digits data
(``best_model.keras``, ``labeled_indices.npy``, ``metadata.json``) with
:func:`trainer.train_base_model`; everything downstream reads the labeled set from there.
"""
import contextlib
import sys
from pathlib import Path

from labelnext.data import load_dataset
from labelnext.training.backbones import ARCHS
from labelnext.training.runs import check_run_target
from labelnext.training.trainer import train_base_model
from labelnext.utils.checks import check_int
from labelnext.utils.console import ArgumentParser, run_cli
from labelnext.utils.defaults import MODEL_FILE, PATIENCE

# Python parameters -> the flags of this script, for one-line errors (cli.flag_message).
FLAGS = {"name": "--dataset", "data_dir": "--data-dir", "labeled_size": "--labeled-size", "random_state": "--seed",
         "seed": "--seed", "out_dir": "--out", "steps": "--steps", "patience": "--patience", "image_size": "--image-size"}


def build_parser():
    p = ArgumentParser(
        description="Train the base model (by data kind: MobileNetV3Small for images, an MLP for tables, a text MLP "
        "for text) on a seeded labeled seed set and save models/<run>/{best_model.keras, labeled_indices.npy, metadata.json}.",
    )
    p.add_argument("--dataset", default="digits", help="'digits' (embedded, offline), 'cifar10', or a path: CIFAR-10 pickle folder, image-folder tree ROOT/{train,test}/<class>/, .npz (x_train, y_train, x_test, y_test), a .tar.gz of a tree, or a table / text file (.csv, .tsv, .parquet)")
    p.add_argument("--data-dir", default=None, help="where the 'cifar10' data lies, if not in ~/.keras/datasets")
    p.add_argument("--labeled-size", type=int, default=500, help="size of the initial labeled set")
    p.add_argument("--seed", type=int, default=0, help="seed for the labeled draw, weights and training")
    p.add_argument("--no-stratify", action="store_true", help="draw the labeled set uniformly instead of per class")
    p.add_argument("--out", default=None, help="run folder (default models/<labeled-size>_train); an existing one is replaced only with --overwrite and only if it is one of our runs")
    p.add_argument("--overwrite", action="store_true", help="replace --out when it already holds a run")
    p.add_argument("--arch", default=None, choices=ARCHS, help="model architecture (default: by data kind)")
    p.add_argument("--weights", default="none", help="initial weights of mobilenetv3: none, imagenet (needs network "
                   "once), or the path of a local weights file of MobileNetV3Small without its top (e.g. Keras' "
                   "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5)")
    p.add_argument("--steps", type=int, default=800, help="optimiser steps budget (epochs = steps / batches per epoch)")
    p.add_argument("--patience", type=int, default=PATIENCE, help="early-stopping patience in epochs on the validation split")
    p.add_argument("--image-size", type=int, default=32, help="model input height and width")
    p.add_argument("--drop-columns", default=None, metavar="A,B", help="a table's feature columns to leave out, e.g. id,row_number (every column that looks like a leak is named: an ID, a counter, a constant, values that sort the classes into blocks)")
    p.add_argument("--keep-columns", default=None, metavar="A,B", help="a table's only feature columns to use")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_int(args.labeled_size, "labeled_size", low=1)
    check_int(args.seed, "random_state", low=0)
    check_int(args.steps, "steps", low=1)
    check_int(args.patience, "patience", low=0)
    out = Path(args.out) if args.out else Path("models") / f"{args.labeled_size}_train"
    check_run_target(out, args.overwrite)
    print(f"training {args.arch or 'the default model of the data kind'} on {args.dataset} with {args.labeled_size} labels -> {out}",
          file=sys.stderr)
    data = load_dataset(args.dataset, data_dir=args.data_dir, image_size=args.image_size,
                        drop_columns=args.drop_columns, keep_columns=args.keep_columns)
    for note in data.notes:
        if note.startswith("warning:"):
            print(note, file=sys.stderr)
    # Keras prints epoch lines to stdout: they are progress, so they go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        out, meta = train_base_model(
            args.dataset, args.data_dir, labeled_size=args.labeled_size, random_state=args.seed,
            stratified=not args.no_stratify, out_dir=out, arch=args.arch,
            weights=None if args.weights == "none" else args.weights, steps=args.steps, image_size=args.image_size,
            patience=args.patience, verbose=0 if args.quiet else 2, overwrite=args.overwrite, data=data,
        )
    print(f"saved {out / MODEL_FILE} ({meta['arch']}): {meta['epochs']} epochs, validation accuracy {meta['validation_accuracy']}, "
          f"test accuracy {meta['test_accuracy']}, {meta['train_seconds']} s")


if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
