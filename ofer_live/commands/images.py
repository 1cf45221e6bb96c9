"""`ofer-live images PATH... --out results.csv`: classify still images (files or folders) into a CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ofer_live.commands.common import add_runtime_arguments, config_from_args

NAME = "images"
HELP = "classify still images (files or folders, recursively) and write one CSV row per face"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="image files and/or folders (searched recursively for images)"
    )
    parser.add_argument(
        "--out",
        "-o",
        required=True,
        type=Path,
        metavar="CSV",
        help="CSV file to write: path,face,x,y,w,h,label,confidence,<7 class probabilities>,occluded_fraction,"
        "occlusion_grid (one row per face; face=-1 with label no_face or error otherwise)",
    )
    parser.add_argument(
        "--aligned",
        action="store_true",
        help="each image is one face crop: the face's keypoints are found inside the crop (upscaled to 128 px "
        "when smaller) and it is aligned to the template, like faces in video frames and the training data; "
        "when no face is found, the centre square is resized instead (counted as 'centre-cropped' in the summary)",
    )
    parser.add_argument(
        "--no-reconstruction",
        action="store_true",
        help="ablation: feed the face to the expression net as it is, without reconstructing occluded patches",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar on stderr")
    add_runtime_arguments(parser)


def _expand(paths: list[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """PATH arguments -> (files to read, [(folder, reason)] for folders without images).

    Missing or unreadable files stay in the list: reading them reports the reason and gives an error row.
    """
    from ofer_live.io.images import iter_image_paths

    files: list[Path] = []
    empty: list[tuple[Path, str]] = []
    for text in paths:
        path = Path(text)
        found = iter_image_paths([path])
        if path.is_dir() and not found:
            empty.append((path, f"no images found in folder {path}"))
        files.extend(found)
    return list(dict.fromkeys(files)), empty


def _aligned_box(original_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The centre square that crop_to_face uses, in original-image pixels (x, y, w, h)."""
    w, h = original_size
    side = min(w, h)
    return (w - side) // 2, (h - side) // 2, side, side


def run(args: argparse.Namespace) -> int:
    import contextlib
    import dataclasses

    from ofer_live.commands._progress import Progress
    from ofer_live.errors import InputError, UserError
    from ofer_live.face.crops import CropAligner
    from ofer_live.io.images import load_image
    from ofer_live.io.paths import check_output_path
    from ofer_live.io.results import CsvWriter
    from ofer_live.pipeline.frame_pipeline import FramePipeline

    config = config_from_args(args, smoothing=False, use_reconstruction=False if args.no_reconstruction else None)
    out = check_output_path(args.out, "CSV file")
    files, bad = _expand(args.paths)
    if not files and not bad:
        raise UserError("no images to process")
    if any(f.resolve() == out.resolve() for f in files):
        raise UserError(f"the CSV file {out} is one of the inputs")

    failed = no_face = faces_total = ok_images = centre_cropped = 0
    with (
        FramePipeline.create(config, detect=not args.aligned, track=False) as pipeline,
        CsvWriter(out) as csv,
        CropAligner() if args.aligned else contextlib.nullcontext() as aligner,
    ):
        for path, reason in bad:
            print(f"ofer-live: {reason}", file=sys.stderr)
            csv.write_error(path)
            failed += 1
        with Progress(len(files), "images", enabled=not args.no_progress) as progress:
            for index, path in enumerate(files):
                try:
                    loaded = load_image(path)
                except InputError as exc:
                    print(f"ofer-live: {exc}", file=sys.stderr)
                    csv.write_error(path)
                    failed += 1
                    progress.update()
                    continue
                if aligner is not None:
                    face, found = aligner.align_crop(loaded.image, pipeline.face_size)
                    centre_cropped += not found
                    (result,) = pipeline.process_aligned(face[None])
                    box = _aligned_box(loaded.original_size)
                    result = dataclasses.replace(result, face=dataclasses.replace(result.face, box=box))
                    csv.write_face(path, 0, result)
                    faces_total += 1
                else:
                    frame_result = pipeline.process(loaded.image, index, 0.0)
                    n = csv.write_result(path, frame_result, box_scale=loaded.scale)
                    faces_total += n
                    no_face += n == 0
                ok_images += 1
                progress.update()
    total = ok_images + failed
    how = f" ({faces_total - centre_cropped} aligned, {centre_cropped} centre-cropped)" if args.aligned else ""
    print(
        f"{total} input(s): {ok_images} read, {faces_total} face(s){how}, {no_face} without a face, "
        f"{failed} failed; results in {out}"
    )
    return 2 if failed else 0
