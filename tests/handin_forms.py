"""A corpus of the forms students hand the homework in, written by this project (no student code).

Each builder writes one submission under a folder and returns the path to grade. The code inside is
our own correct variants (``tests/variants/cs236``, ``tests/variants/flows.py``) dressed the way
real checkouts are: the starter's module-level imports of packages the checks never use
(``torchvision``, ``tqdm``, ``matplotlib``), the starter's ``nns`` import, no ``__init__.py`` in a
hand-in, notebooks with magics and shell lines, zips, merge conflicts.
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

VARIANTS = Path(__file__).with_name("variants")
UTILS = (VARIANTS / "cs236" / "codebase" / "utils.py").read_text()
VAE = (VARIANTS / "cs236" / "codebase" / "models" / "vae.py").read_text()
STARTER_IMPORTS = ("import os\nimport tqdm\nfrom tqdm import tqdm as progress\nimport matplotlib\n"
                   "import matplotlib.pyplot as plt\nimport torchvision\nfrom torchvision import datasets, transforms\n"
                   "from torchvision.utils import save_image\n\n")
STARTER_UTILS = STARTER_IMPORTS + UTILS + (
    "\n\ndef get_mnist_data(device, use_test_subset=True):\n"
    "    preprocess = transforms.ToTensor()\n"
    "    train_loader = torch.utils.data.DataLoader(datasets.MNIST('data', train=True, download=True,\n"
    "                                               transform=preprocess), batch_size=100, shuffle=True)\n"
    "    return train_loader\n")
STARTER_VAE = VAE.replace("from codebase import utils as ut\n",
                          "from codebase import utils as ut\nfrom codebase.models import nns\n")
OTHER_MODEL = ("import torch\nfrom codebase import utils as ut\nfrom codebase.models import nns\nfrom torch import nn\n"
               "from torchvision import datasets, transforms\n\n\nclass {name}(nn.Module):\n"
               "    def __init__(self, nn='v1', name='{low}', z_dim=2):\n        super().__init__()\n"
               "        nn = getattr(nns, nn)\n        self.enc = nn.Encoder(z_dim)\n        self.dec = nn.Decoder(z_dim)\n\n"
               "    def negative_elbo_bound(self, x):\n        raise NotImplementedError\n")
FLOWS = '''import torch
from torch import nn


def affine_flow_log_prob(x, scale, shift):
    z = (x - shift) / scale
    return -0.5 * z ** 2 - 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=x.dtype)) - torch.log(torch.abs(scale))


class AffineCoupling(nn.Module):
    """The homework's coupling layer, as a student writes it in a notebook."""

    def __init__(self, mask, scale_net, shift_net):
        super().__init__()
        self.register_buffer("mask", mask)
        self.s = scale_net
        self.t = shift_net

    def forward(self, x):
        m = self.mask.to(x.dtype)
        log_scale = self.s(m * x)
        y = m * x + (1 - m) * (x * torch.exp(log_scale) + self.t(m * x))
        return y, ((1 - m) * log_scale).reshape(x.shape[0], -1).sum(-1)

    def inverse(self, y):
        m = self.mask.to(y.dtype)
        return m * y + (1 - m) * ((y - self.t(m * y)) * torch.exp(-self.s(m * y)))
'''
UTILS_NAMES = {"sample_gaussian", "log_normal", "log_normal_mixture", "kl_normal", "log_bernoulli_with_logits",
               "log_mean_exp"}
VAE_NAMES = {"negative_elbo_bound", "negative_iwae_bound"}
FLOW_NAMES = {"affine_flow_log_prob", "AffineCoupling"}
# the hand-in's models/gmvae.py and ssvae.py (OTHER_MODEL: the starter's stub, which raises) define these
# names since issue 20; their checks fail with the stub's NotImplementedError
STUB_MODEL_NAMES = {"gmvae_negative_elbo_bound", "ssvae_negative_elbo_bound"}
HANDIN_NAMES = UTILS_NAMES | VAE_NAMES | STUB_MODEL_NAMES


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def official_handin(root: Path, package: str = "codebase") -> Path:
    """CS236's hw2.zip, unpacked: utils.py and models/{vae,gmvae,ssvae,fsvae}.py; no nns/, no __init__.py."""
    files = {f"{package}/utils.py": STARTER_UTILS, f"{package}/models/vae.py": STARTER_VAE}
    for name in ("GMVAE", "SSVAE", "FSVAE"):
        files[f"{package}/models/{name.lower()}.py"] = OTHER_MODEL.format(name=name, low=name.lower())
    return write(root, files)


def checkout(root: Path) -> Path:
    """A student's whole CS236 checkout: __init__.py files, a run script, the starter's imports."""
    official_handin(root)
    return write(root, {"codebase/__init__.py": "", "codebase/models/__init__.py": "",
                        "run_vae.py": "from codebase.models.vae import VAE\nVAE()\n", "README.md": "# hw2\n"})


FORMS = {}


def form(name, names):
    def register(build):
        FORMS[name] = (build, names)
        return build
    return register


@form("starter-imports", HANDIN_NAMES)
def _starter_imports(d: Path) -> Path:
    return checkout(d / "hw2")


@form("official-handin", HANDIN_NAMES)
def _official(d: Path) -> Path:
    return official_handin(d / "hw2")


@form("package-given", HANDIN_NAMES)
def _package_given(d: Path) -> Path:
    return checkout(d / "hw2") / "codebase"


@form("xcs236-package-given", HANDIN_NAMES)
def _xcs236_package_given(d: Path) -> Path:
    root = official_handin(d / "XCS236-PS2", "src/submission")
    for f in (root / "src" / "submission").rglob("*.py"):
        f.write_text(f.read_text().replace("from codebase", "from submission"))
    return root / "src" / "submission"


@form("xcs236-deep", HANDIN_NAMES)
def _xcs236_deep(d: Path) -> Path:
    _xcs236_package_given(d / "repo" / "courses")
    write(d / "repo", {"README.md": "notes\n", "hw1/notes.txt": "x\n"})
    return d / "repo"


@form("flat", UTILS_NAMES | VAE_NAMES)
def _flat(d: Path) -> Path:
    return write(d / "flat", {"utils.py": STARTER_UTILS, "vae.py": STARTER_VAE})


@form("zip", HANDIN_NAMES)
def _zip(d: Path) -> Path:
    src = official_handin(d / "unzipped")
    archive = d / "hw2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(src.rglob("*.py")):
            zf.write(f, f.relative_to(src).as_posix())
        zf.writestr("__MACOSX/codebase/._utils.py", "junk")
    shutil.rmtree(src)
    return archive


def notebook(cells: list[str]) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c.splitlines(True)}
        for c in cells] + [{"cell_type": "markdown", "metadata": {}, "source": ["# Results"]}]})


@form("notebook", UTILS_NAMES | FLOW_NAMES)
def _notebook(d: Path) -> Path:
    cells = ["!pip install torchvision tqdm\n%matplotlib inline\n" + STARTER_IMPORTS,
             "%%time\nprint('timing a cell')\n", UTILS, FLOWS,
             "loader = get_mnist_data('cpu')\nfor x, y in progress(loader):\n    pass\nprint(next(iter(loader)))\n"]
    return write(d, {"hw2.ipynb": notebook(cells)}) / "hw2.ipynb"


@form("flows-beside-checkout", HANDIN_NAMES | FLOW_NAMES)
def _flows_beside(d: Path) -> Path:
    root = checkout(d / "hw2")
    write(root, {"codebase/flows.py": FLOWS})
    return root


@form("flows-in-models", HANDIN_NAMES | FLOW_NAMES)
def _flows_in_models(d: Path) -> Path:
    root = official_handin(d / "hw2")
    write(root, {"codebase/models/flow.py": FLOWS})
    return root


CONFLICT = ("<<<<<<< HEAD\ndef kl_normal(qm, qv, pm, pv):\n    return 0\n=======\n"
            "def kl_normal(qm, qv, pm, pv):\n    return 1\n>>>>>>> origin/main\n")


@form("conflicted", set())
def _conflicted(d: Path) -> Path:
    root = official_handin(d / "hw2")
    text = STARTER_UTILS.splitlines(True)
    (root / "codebase" / "utils.py").write_text("".join(text[:12]) + CONFLICT + "".join(text[12:]))
    return root
