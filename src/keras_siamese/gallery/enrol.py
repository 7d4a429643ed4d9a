"""What to enrol from a folder: its image files, their ids and labels."""

from pathlib import Path

from keras_siamese.data.folder import list_images, split_folders


def folder_entries(root):
    """`(paths, ids, labels)` of every image under `root`: a file in a subfolder is labelled with the
    name of the top subfolder (class folders), or in a folder laid out as splits (`train/`, `test/`...)
    with the name of the subfolder of its split; a file directly in `root` or in a split folder has
    label "" (unlabelled). Ids are paths relative to the folder's parent ("photos/cat/1.png")."""
    root = Path(root)
    paths = list_images(root, fenced=True)
    relative = [p.relative_to(root) for p in paths]
    ids = [(Path(root.resolve().name) / r).as_posix() for r in relative]
    splits = {folder.name for folder in split_folders(root).values()}
    depths = [int(r.parts[0] in splits and len(r.parts) > 1) for r in relative]
    labels = [r.parts[depth] if len(r.parts) > depth + 1 else "" for r, depth in zip(relative, depths)]
    return paths, ids, labels
