"""Small data builders shared by tests in several folders."""
import numpy as np
from PIL import Image

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def photos(root, per_class=30, seed=0):
    """A labeled-by-folder photo tree ROOT/<class>/*.png with no test split."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = np.clip(np.array(colour) + rng.normal(0, 70, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i:03d}.png")
    return root


def arcs(n=150, seed=0):
    """Two classes on half great circles of the unit sphere in 4-d, from +e1 over +e3 to -e1 and from
    +e2 over +e4 to -e2: each a chain of near neighbours, and -e1 lies on the e2 side of any plane
    that splits one item of each class at the +e1 / +e2 ends."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, np.pi, n)
    x = np.zeros((2 * n, 4))
    x[:n, 0], x[:n, 2] = np.cos(t), np.sin(t)
    x[n:, 1], x[n:, 3] = np.cos(t), np.sin(t)
    x += rng.normal(0, 0.02, x.shape)
    return x.astype(np.float32), np.repeat([0, 1], n)
