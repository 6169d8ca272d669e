"""The Dockerfile and the build context as the tests see them: stages, arguments, the context copy."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, value)

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]


def parse_stages(path: Path = DOCKERFILE) -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages in order (instructions with continuations joined)."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for item in DockerfileParser(str(path)).structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "COMMENT":
            continue
        if instruction == "FROM":
            base, _, name = value.partition(" AS ")
            stages.append(Stage(name=name.strip(), base=base.strip()))
        elif not stages:
            if instruction == "ARG" and "=" in value:
                key, _, default = value.partition("=")
                global_args[key] = default
        else:
            stages[-1].instructions.append((instruction, value))
    return global_args, stages


def stage(name: str) -> Stage:
    for candidate in parse_stages()[1]:
        if candidate.name == name:
            return candidate
    raise LookupError(f"the Dockerfile has no stage named {name!r}")


def exec_form(value: str) -> list[str]:
    """A CMD/ENTRYPOINT value as its JSON list; ValueError when it is shell form."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError(f"not exec form (a JSON list): {value!r}") from None
    if not isinstance(parsed, list) or not all(isinstance(word, str) for word in parsed):
        raise ValueError(f"not exec form (a JSON list of strings): {value!r}")
    return parsed


def dockerignore_patterns(root: Path = ROOT) -> list[str]:
    lines = (root / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def context_files(root: Path = ROOT) -> list[str]:
    """Files that `COPY . .` sees: the context .dockerignore leaves, as the Docker engine computes it.

    The engine always receives the Dockerfile and .dockerignore, but COPY skips them when ignored.
    """
    patterns = dockerignore_patterns(root)
    paths = exclude_paths(str(root), patterns)
    always_sent = {name for name in ("Dockerfile", ".dockerignore") if name in patterns}
    return sorted(p for p in paths if (root / p).is_file() and p not in always_sent)


def copy_context(dest: Path, root: Path = ROOT) -> list[str]:
    files = context_files(root)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    return files
