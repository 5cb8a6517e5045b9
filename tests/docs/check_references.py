#!/usr/bin/env python3
"""Every file a doc or a comment names must be in the repository.

Scans the repository's text files (git ls-files: tracked, plus new files git does not ignore;
*.md, *.h, *.cpp, *.py, *.sh, *.txt, CMakeLists.txt) for
  (a) Markdown links [text](path) with a relative target (Markdown files, outside code), resolved
      against the linking file's folder, and
  (b) path mentions docs/NAME.md, docs/results/FILE, scripts/FILE, bench/FILE, reference/FILE and
      adapters/FILE, resolved against the repository root,
  (c) any path into ../shared/ other than ../shared/data (outside the repository: a clone lacks it),
and prints `file:line: 'ref' does not exist` for each one that names nothing in the repository.
Exits 1 if any is broken.
Not checked: URLs, #anchors, ../shared/data/... (the corpora the repository reads in place, see
the README), and paths git ignores (outputs the code writes, such as bench/out/). A brace group
{a,b} is expanded and each name checked; a glob (*) must match at least one file; a missing name
with a placeholder part (FILE, OUT, N in prompt-N.txt, $VAR, <name>, ...) stands for a name the
user chooses, so only the folder before it must exist.

    python3 tests/docs/check_references.py [--root DIR]
"""
import argparse
import fnmatch
import os
import re
import subprocess
import sys

EXTENSIONS = (".md", ".h", ".cpp", ".py", ".sh", ".txt")
SKIP_PREFIXES = ("tests/data/",)  # fixtures and corpora: their text is data, not documentation

LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)")
SEGMENT = r"(?:[\w.*$<>-]|\{[\w.,*-]*\})+"
MENTION = re.compile(
    r"(?<![\w./$-])(?:docs/[\w./-]+\.md|(?:docs/results|scripts|bench|reference|adapters)/"
    + SEGMENT + r"(?:/" + SEGMENT + r")*)")
SHARED = re.compile(r"(?<![\w./-])\.\./shared/[\w./-]+")
ALLOWED_OUTSIDE = ("../shared/data",)  # relative to the repository root
REAL_CAPITALS = {"README", "LICENSE", "CHANGELOG", "NOTICE", "TODO"}


def is_placeholder(segment):
    """FILE, OUT.json, prompt-N.txt, $NAME, <name>, ...: a name the user (or the code) chooses."""
    if re.search(r"[$<>]|\.\.\.", segment):
        return True
    return any(re.fullmatch(r"[A-Z][A-Z0-9]{0,7}", part) and part not in REAL_CAPITALS
               for part in re.split(r"[-_.]", segment))


def repository_files(root):
    """Paths (relative, '/'-separated) that a clone holds: tracked and not-ignored new files."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=root, check=True, capture_output=True).stdout
        names = [n for n in out.decode("utf-8", "replace").split("\0") if n]
        return sorted({n for n in names if os.path.exists(os.path.join(root, n))})
    except (OSError, subprocess.CalledProcessError):  # no git (a source tarball): every file on disk
        names = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith((".", "build"))]
            names += [os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/") for f in files]
        return sorted(names)


def expand_braces(text):
    match = re.search(r"\{([^{}]*)\}", text)
    if not match:
        return [text]
    out = []
    for alternative in match.group(1).split(","):
        out += expand_braces(text[:match.start()] + alternative + text[match.end():])
    return out


class Repository:
    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.files = set(repository_files(self.root))
        self.ignored_cache = {}
        self.dirs = {""}
        for name in self.files:
            parts = name.split("/")
            for i in range(1, len(parts)):
                self.dirs.add("/".join(parts[:i]))

    def exists(self, relative):
        """Does `relative` (repository-relative, may hold placeholders or globs) name something here?"""
        relative = relative.rstrip("/")
        if any(c in relative for c in "*?["):
            if any(fnmatch.fnmatchcase(name, relative) for name in self.files | self.dirs):
                return True
        elif relative in self.files or relative in self.dirs:
            return True
        if self.ignored(relative):
            return True
        segments = relative.split("/")
        for i, segment in enumerate(segments):
            if is_placeholder(segment):  # a name the user chooses: its folder must exist
                folder = "/".join(segments[:i])
                return folder in self.dirs or self.ignored(folder)
        return False

    def ignored(self, relative):
        """Does git ignore `relative` (as a file or a folder)? Outputs such as bench/out/."""
        if not relative:
            return False
        if relative not in self.ignored_cache:
            try:  # exit status 0: at least one of the two is ignored
                r = subprocess.run(["git", "check-ignore", "--no-index", relative, relative + "/"],
                                   cwd=self.root, capture_output=True)
                self.ignored_cache[relative] = r.returncode == 0
            except OSError:
                self.ignored_cache[relative] = False
        return self.ignored_cache[relative]


def strip_code(line, in_fence):
    """The line without inline code spans (for links), and the fence state after it."""
    if line.lstrip().startswith(("```", "~~~")):
        return "", not in_fence
    if in_fence:
        return "", True
    return re.sub(r"`[^`]*`", "", line), False


def check_file(repo, name):
    path = os.path.join(repo.root, name)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (UnicodeDecodeError, OSError):
        return []
    broken = []
    folder = os.path.dirname(name)
    in_fence = False
    for number, line in enumerate(lines, 1):
        refs = []  # (shown text, repository-relative path or None when outside the repository)
        if name.endswith(".md"):
            text, in_fence = strip_code(line, in_fence)
            targets = [m.group(1) for m in LINK.finditer(text)]
            ref = REF_LINK.match(text)
            if ref:
                targets.append(ref.group(1))
            for target in targets:
                if re.match(r"^[a-zA-Z][\w+.-]*:", target) or target.startswith(("#", "/")):
                    continue  # a URL, mailto:, an anchor in this page, or an absolute path
                target = target.split("#")[0].split("?")[0]
                if not target:
                    continue
                resolved = os.path.normpath(os.path.join(folder, target)).replace(os.sep, "/")
                if resolved == ".." or resolved.startswith("../"):
                    if any(resolved == a or resolved.startswith(a + "/") for a in ALLOWED_OUTSIDE):
                        continue
                    refs.append((target, None))
                else:
                    refs.append((target, resolved if resolved != "." else ""))
        for m in MENTION.finditer(line):
            mention = m.group(0).rstrip(".,;:")
            if re.search(r"https?://\S*$", line[:m.start()]):
                continue  # part of a URL
            refs.append((mention, mention))
        for m in SHARED.finditer(line):
            if not any(m.group(0) == a or m.group(0).startswith(a + "/") for a in ALLOWED_OUTSIDE):
                refs.append((m.group(0).rstrip(".,;:"), None))
        for shown, resolved in dict.fromkeys(refs):  # once per line
            ok = resolved is not None and all(repo.exists(r) for r in expand_braces(resolved))
            if not ok:
                broken.append(f"{name}:{number}: '{shown}' does not exist")
    return broken


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    parser.add_argument("--root", default=default_root, help="repository root (default: this script's)")
    args = parser.parse_args()
    repo = Repository(args.root)
    scanned = [n for n in sorted(repo.files)
               if (n.endswith(EXTENSIONS) or os.path.basename(n) == "CMakeLists.txt")
               and not n.startswith(SKIP_PREFIXES)]
    broken = []
    for name in scanned:
        broken += check_file(repo, name)
    for line in broken:
        print(line)
    sys.stdout.flush()
    print(f"{len(scanned)} files scanned, {len(broken)} broken reference(s)", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
