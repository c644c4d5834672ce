"""The weights manager: where each component's pretrained files are, fetching and verifying them.

Resolution order for a file:

1. an explicit path (``--set segmenter.checkpoint=PATH``);
2. ``$AVSEG_WEIGHTS_DIR`` (default: avseg's user cache dir, where ``avseg weights fetch`` writes);
3. the Hugging Face cache (``$HF_HOME``/``$HF_HUB_CACHE``; honours ``HF_HUB_OFFLINE``);
4. torch hub's checkpoints dir (``$TORCH_HOME/hub/checkpoints``).

Nothing here imports torch except :func:`load_state_dict`, which refuses pickled code.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avseg.errors import AvsegError, WeightsMissing


@dataclass(frozen=True)
class WeightFile:
    """One pretrained artefact: a single file (``url``) or a Hugging Face repo snapshot (``hf_repo``).

    For a repo, ``hf_files`` lists the files that must be present for a load to work.
    ``sha256`` may be a full digest or, as torch hub file names carry, a prefix of it.
    """

    filename: str
    url: str | None = None
    hf_repo: str | None = None
    hf_revision: str = "main"
    hf_files: tuple[str, ...] = ("config.json",)
    size: int | None = None
    sha256: str | None = None
    licence: str | None = None

    @property
    def is_repo(self) -> bool:
        return self.hf_repo is not None

    @property
    def local_name(self) -> str:
        """Folder or file name under AVSEG_WEIGHTS_DIR."""
        return self.hf_repo.replace("/", "--") if self.hf_repo else self.filename


@dataclass
class Resolution:
    path: Path | None
    looked: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.path is not None


def weights_dir() -> Path:
    env = os.environ.get("AVSEG_WEIGHTS_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("avseg")) / "weights"


def hf_hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def torch_hub_checkpoints() -> Path:
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def _complete(path: Path, wf: WeightFile) -> bool:
    if wf.is_repo:
        return path.is_dir() and all((path / f).exists() for f in wf.hf_files)
    return path.is_file()


def _hf_snapshot(wf: WeightFile) -> Path | None:
    assert wf.hf_repo is not None
    repo_dir = hf_hub_cache() / ("models--" + wf.hf_repo.replace("/", "--"))
    ref = repo_dir / "refs" / wf.hf_revision
    if ref.is_file():
        snap = repo_dir / "snapshots" / ref.read_text().strip()
        return snap
    snaps = sorted((repo_dir / "snapshots").glob("*")) if (repo_dir / "snapshots").is_dir() else []
    return snaps[-1] if snaps else repo_dir / "snapshots"


def locate(wf: WeightFile, explicit: str | os.PathLike[str] | None = None) -> Resolution:
    """Find ``wf`` on disk, recording every place looked (for errors and ``avseg weights list``)."""
    res = Resolution(None)
    if explicit:  # an explicit path that is wrong is an error, not a fall-through
        path = Path(explicit).expanduser()
        return Resolution(path if _complete(path, wf) else None, [str(path)])
    candidates: list[Path] = [weights_dir() / wf.local_name]
    if wf.is_repo:
        snap = _hf_snapshot(wf)
        if snap is not None:
            candidates.append(snap)
    else:
        candidates.append(torch_hub_checkpoints() / wf.filename)
    for c in candidates:
        res.looked.append(str(c))
        if _complete(c, wf):
            res.path = c
            return res
    return res


def missing_message(component: str, variant: str | None, wf: WeightFile, res: Resolution, fetch_name: str) -> str:
    what = f"{component}" + (f" ({variant})" if variant else "")
    return (
        f"{what}: weights {wf.hf_repo or wf.filename} not found (looked in {', '.join(res.looked)}); "
        f"run 'avseg weights fetch {fetch_name}' or place the file there by hand, "
        "or use --tiny for a plumbing check with random weights"
    )


def require(component: str, variant: str | None, wf: WeightFile, explicit: str | None = None) -> Path:
    res = locate(wf, explicit)
    if res.path is None:
        raise WeightsMissing(missing_message(component, variant, wf, res, component.split()[-1].strip("'")))
    return res.path


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, wf: WeightFile) -> str | None:
    """None when ``path`` matches the declared size and sha256, else a one-line problem."""
    if wf.is_repo:
        missing = [f for f in wf.hf_files if not (path / f).exists()]
        return f"missing {', '.join(missing)} in {path}" if missing else None
    if wf.size is not None and path.stat().st_size != wf.size:
        return f"{path}: size {path.stat().st_size} != expected {wf.size}"
    if wf.sha256:
        digest = sha256_of(path)
        if not digest.startswith(wf.sha256.lower()):
            return f"{path}: sha256 {digest[:12]}… does not match expected {wf.sha256[:12]}…"
    return None


def fetch(wf: WeightFile, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``wf`` into :func:`weights_dir` with resume, then verify it."""
    dest = weights_dir() / wf.local_name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if wf.is_repo:
        return _fetch_hf(wf, dest)
    if wf.url is None:
        raise AvsegError(f"{wf.filename} has no download URL; place it in {dest.parent} by hand")
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(wf.url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            if start and resp.status != 206:  # server ignored the range: start over
                start = 0
            total = resp.length + start if resp.length is not None else wf.size
            with open(part, "ab" if start else "wb") as out:
                done = start
                while block := resp.read(1 << 20):
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AvsegError(
            f"cannot download {wf.url} ({reason}); download it on a connected machine and place it at {dest}"
        ) from None
    problem = verify(part, wf)
    if problem:
        part.unlink()
        raise AvsegError(f"downloaded {wf.filename} failed verification: {problem}")
    os.replace(part, dest)
    return dest


def _fetch_hf(wf: WeightFile, dest: Path) -> Path:
    assert wf.hf_repo is not None
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise AvsegError("fetching Hugging Face weights needs huggingface_hub: pip install huggingface_hub") from None
    try:
        path = snapshot_download(wf.hf_repo, revision=wf.hf_revision, local_dir=dest)
    except Exception as exc:  # offline, unknown repo, auth
        raise AvsegError(
            f"cannot download {wf.hf_repo} from the Hugging Face Hub ({type(exc).__name__}); "
            f"on a connected machine run 'huggingface-cli download {wf.hf_repo} --local-dir {dest}' "
            "and copy the folder here"
        ) from None
    return Path(path)


def load_state_dict(path: Path) -> dict[str, Any]:
    """Load a checkpoint without executing pickled code (safetensors or ``weights_only=True``)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    import pickle

    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise AvsegError(
            f"refusing to load {path}: it needs pickle code execution ({str(exc).splitlines()[0][:120]}); "
            "convert it to safetensors or a plain state dict"
        ) from None
    except (RuntimeError, OSError, EOFError) as exc:
        raise AvsegError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0][:160]}") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise AvsegError(f"{path} does not hold a state dict")
    return obj


def hf_config_weights(repos: dict[str, str], licence: str) -> dict[str, list[WeightFile]]:
    """variant -> the one Hugging Face checkpoint folder it loads (checked by its config files)."""
    return {
        v: [WeightFile(repo.split("/")[1], hf_repo=repo, hf_files=("config.json", "preprocessor_config.json"),
                       licence=licence)]
        for v, repo in repos.items()
    }


def load_hf_folder(component: str, path: Path, model_cls: Any, processor_cls: Any) -> tuple[Any, Any]:
    """(model in eval mode, processor) from a local transformers checkpoint folder; a folder that
    does not load fails in one line naming the component and the folder."""
    try:
        processor = processor_cls.from_pretrained(str(path), local_files_only=True)
        model = model_cls.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        msg = " ".join(str(exc).split())[:200]
        raise AvsegError(f"{component}: cannot load {path}: {msg}") from None
    return model.eval(), processor
