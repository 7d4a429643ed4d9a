"""What to enrol from a folder: its image files, their ids and labels."""

from pathlib import Path

from keras_siamese.data.folder import list_images


def folder_entries(root):
    """`(paths, ids, labels)` of every image under `root`: a file in a subfolder is labelled with the
    name of the top subfolder (class folders); a file directly in `root` has label "" (unlabelled).
    Ids are paths relative to the folder's parent ("photos/cat/1.png")."""
    root = Path(root)
    paths = list_images(root)
    relative = [p.relative_to(root) for p in paths]
    ids = [(Path(root.resolve().name) / r).as_posix() for r in relative]
    labels = [r.parts[0] if len(r.parts) > 1 else "" for r in relative]
    return paths, ids, labels
