#!/usr/bin/env python3
"""Runs README.md's "Try it" commands exactly as written and compares what comes out with the
samples the README shows. Python 3.9+, standard library only.

    python3 scripts/newcomer-check.py [--readme README.md]

How it reads the first ```sh block after the "## Try it" heading:
  - `# terminal N ...` starts (or goes back to) terminal N: one `bash` per terminal, in the
    repository root, with a fresh environment (PATH, HOME, locale, proxy and toolchain
    variables only: none of the service's settings), so `export` lines carry over to the
    terminal's later commands as they would for a reader.
  - Any other line that is not a comment is a command (`\\` continues it on the next line).
    A command `<like this>` in it is a placeholder: the line is matched against every line
    printed so far, the placeholder standing for one word, and the word found is put in.
  - `#   text` (a hash and three spaces) is a sample of what the command above printed (or,
    after a terminal header with no command, what that terminal's running command prints
    next); a bare `#` between two samples is an empty line. `...` in a sample matches any
    run of characters; a sample that is only `...` matches any number of lines.
  - In an interactive command's samples, `> text` is typed (sent as one line once the
    WebSocket is open) and `< text` is a frame the command prints (wscat prints frames
    without the `< ` when its output is not a terminal; its `> ` prompts are ignored).
  - The last command of every terminal but the last one keeps running (the server, wscat):
    its samples are awaited line by line as it prints them. Every other command runs to
    completion and its whole standard output must match its samples, line for line.
Only standard output is compared (logs go to standard error, shown on a failure).

Exit status: 0 when everything matched; 1 when a sample did not match, a line did not come
within its time box, or a command failed; 2 when the check could not start (no Try-it block,
the README's ports already taken). It stops everything it started, on failure too.
"""

import argparse
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = "#   "
DONE = "\x1fNEWCOMER-CHECK-DONE"
KEEP_ENV = re.compile(
    r"^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LC_\w+|TERM|TMPDIR|TZ|CARGO_HOME|RUSTUP_HOME"
    r"|RUSTUP_TOOLCHAIN|CARGO_TARGET_DIR|npm_config_\w+|NPM_CONFIG_\w+|NODE_EXTRA_CA_CERTS"
    r"|SSL_CERT_\w+|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY|PYENV\w*)$"
)


class Failed(Exception):
    """A sample did not match, a line did not come in time, or a command failed."""


class CannotStart(Exception):
    """The check cannot run here (no Try-it block, ports taken)."""


class Sample:
    def __init__(self, line_no, text):
        self.line_no = line_no
        self.text = text

    def matches(self, actual):
        return sample_regex(self.text).fullmatch(actual) is not None


def sample_regex(text):
    return re.compile(".*".join(re.escape(part) for part in text.split("...")), re.DOTALL)


class Step:
    """A command (with its samples) or, for `command is None`, more samples of a running one."""

    def __init__(self, terminal, line_no, command):
        self.terminal = terminal
        self.line_no = line_no
        self.command = command
        self.samples = []
        self.keeps_running = False


def parse(readme_text):
    lines = readme_text.split("\n")
    start = next((i for i, l in enumerate(lines) if l.startswith("## Try it")), None)
    if start is None:
        raise CannotStart('no "## Try it" heading')
    fence = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("```sh")), None)
    if fence is None:
        raise CannotStart('no ```sh block after "## Try it"')
    end = next((i for i in range(fence + 1, len(lines)) if lines[i].startswith("```")), None)
    if end is None:
        raise CannotStart("the Try-it block is not closed")
    block = [(i + 1, lines[i]) for i in range(fence + 1, end)]

    steps, terminal, current, pending = [], None, None, None
    for index, (line_no, line) in enumerate(block):
        if pending is not None:
            pending[1] += "\n" + line
            if not line.endswith("\\"):
                current = Step(terminal, pending[0], pending[1])
                steps.append(current)
                pending = None
            continue
        header = re.match(r"# terminal (\d+)", line)
        if header:
            terminal = int(header.group(1))
            current = None
            continue
        if line.startswith(SAMPLE) or (line == "#" and is_blank_sample(block, index)):
            if terminal is None:
                raise CannotStart(f"README line {line_no}: a sample before any `# terminal N`")
            if current is None:
                current = Step(terminal, line_no, None)
                steps.append(current)
            current.samples.append(Sample(line_no, line[len(SAMPLE):]))
            continue
        if line.startswith("#") or not line.strip():
            continue
        if terminal is None:
            raise CannotStart(f"README line {line_no}: a command before any `# terminal N`")
        if line.endswith("\\"):
            pending = [line_no, line]
        else:
            current = Step(terminal, line_no, line)
            steps.append(current)
    commands = [s for s in steps if s.command is not None]
    if not commands:
        raise CannotStart("the Try-it block has no commands")
    last_terminal = commands[-1].terminal
    for terminal in {s.terminal for s in commands}:
        if terminal != last_terminal:
            [s for s in commands if s.terminal == terminal][-1].keeps_running = True
    for step in steps:
        if step.command is None and not any(
            s.keeps_running and s.terminal == step.terminal for s in commands
        ):
            raise CannotStart(
                f"README line {step.line_no}: samples for terminal {step.terminal}, "
                "which has no running command"
            )
    return steps


def is_blank_sample(block, index):
    before = block[index - 1][1] if index > 0 else ""
    after = block[index + 1][1] if index + 1 < len(block) else ""
    return before.startswith(SAMPLE) and after.startswith(SAMPLE)


def fresh_environment():
    return {k: v for k, v in os.environ.items() if KEEP_ENV.match(k)}


class Terminal:
    """One `bash`, fed commands on its standard input as a reader types them."""

    def __init__(self, number, log):
        self.number = number
        self.log = log
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=ROOT,
            env=fresh_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.chunks = queue.Queue()
        self.buffer = ""
        self.stderr = []
        self.lines = []  # every complete line printed, for placeholders
        self.streaming = None  # since when a command keeps running in the foreground
        self.seen_running = False
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self):
        while True:
            data = os.read(self.process.stdout.fileno(), 65536)
            if not data:
                self.chunks.put(None)
                return
            self.chunks.put(data.decode("utf-8", "replace"))

    def _read_stderr(self):
        for raw in iter(self.process.stderr.readline, b""):
            self.stderr.append(raw.decode("utf-8", "replace"))
            del self.stderr[:-200]

    def type(self, text):
        self.log(f"terminal {self.number}$ {text}")
        try:
            self.process.stdin.write((text + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            raise Failed(f"terminal {self.number} has ended") from None

    def _more(self, deadline, what):
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Failed(f"terminal {self.number}: {what} did not come in time")
            try:
                chunk = self.chunks.get(timeout=min(remaining, 0.5))
                break
            except queue.Empty:
                self.check_still_running(what)
        if chunk is None:
            self.chunks.put(None)
            raise Failed(f"terminal {self.number}: the command ended before {what}")
        self.buffer += chunk

    def check_still_running(self, what):
        """A running command that ended (the shell has no child left) prints nothing more."""
        if self.streaming is None:
            return
        if children(self.process.pid):
            self.seen_running = True
        elif self.seen_running or time.monotonic() - self.streaming > 5:
            raise Failed(f"terminal {self.number}: the command ended before {what}")

    def run(self, command, timeout):
        """Runs a command to completion: its standard output and exit status."""
        self.type(command)
        self.process.stdin.write(f"printf '{DONE} %s\\n' \"$?\"\n".encode())
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while DONE not in self.buffer or "\n" not in self.buffer.split(DONE, 1)[1]:
            self._more(deadline, "the end of the command")
        output, rest = self.buffer.split(DONE, 1)
        status, self.buffer = rest.lstrip(" ").split("\n", 1)
        lines = output_lines(output)
        self.lines.extend(lines)
        return lines, int(status)

    def next_line(self, timeout, what):
        deadline = time.monotonic() + timeout
        while "\n" not in self.buffer:
            self._more(deadline, what)
        line, self.buffer = self.buffer.split("\n", 1)
        line = line.rstrip("\r")
        self.lines.append(line)
        return line

    def stop(self):
        """Ends the terminal's process group (the shell and all it started): TERM, then KILL."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and self.group_alive():
                time.sleep(0.1)
            if not self.group_alive():
                break
        self.process.poll()

    def group_alive(self):
        self.process.poll()  # reap the shell, so it does not count as alive
        try:
            os.killpg(self.process.pid, 0)
            return True
        except ProcessLookupError:
            return False


def children(pid):
    """Process ids whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def output_lines(output):
    if output == "":
        return []
    lines = [line.rstrip("\r") for line in output.split("\n")]
    if lines[-1] == "":
        lines.pop()
    return lines


def match_all(samples, actual):
    """Whole output against samples; `...` alone matches any number of lines."""
    memo = {}

    def at(i, j):
        if (i, j) not in memo:
            if i == len(samples):
                memo[(i, j)] = j == len(actual)
            elif samples[i].text == "...":
                memo[(i, j)] = any(at(i + 1, k) for k in range(j, len(actual) + 1))
            else:
                memo[(i, j)] = j < len(actual) and samples[i].matches(actual[j]) and at(i + 1, j + 1)
        return memo[(i, j)]

    if at(0, 0):
        return None
    # The first sample that does not match in order, for the report.
    j = 0
    for sample in samples:
        if sample.text == "...":
            continue
        if j < len(actual) and sample.matches(actual[j]):
            j += 1
            continue
        return sample, (actual[j] if j < len(actual) else "(no more output)")
    return samples[-1], "(more output than the README shows)"


class Check:
    def __init__(self, readme_path, step_timeout, build_timeout):
        self.readme_path = readme_path
        self.step_timeout = step_timeout
        self.build_timeout = build_timeout
        self.terminals = {}
        self.interactive_ready = {}

    def log(self, text):
        print(f"newcomer-check: {text}", flush=True)

    def terminal(self, number):
        if number not in self.terminals:
            self.terminals[number] = Terminal(number, self.log)
        return self.terminals[number]

    def timeout_for(self, command):
        slow = command and ("cargo " in command or "npx " in command)
        return self.build_timeout if slow else self.step_timeout

    def fill_placeholders(self, step):
        lines = step.command.split("\n")
        for index, line in enumerate(lines):
            holes = re.findall(r"<[a-z][a-z ]*>", line)
            if not holes:
                continue
            pattern = "".join(
                re.escape(part) if k % 2 == 0 else r"(\S+)"
                for k, part in enumerate(re.split(r"(<[a-z][a-z ]*>)", line))
            )
            printed = [l for t in self.terminals.values() for l in t.lines]
            found = None
            for printed_line in printed:
                match = re.search(pattern, printed_line)
                if match:
                    found = match
            if found is None:
                raise Failed(
                    f"README line {step.line_no}: nothing printed so far fills {', '.join(holes)}"
                    f" (looked for a line like `{line.strip()}`)"
                )
            filled = line
            for hole, value in zip(holes, found.groups()):
                filled = filled.replace(hole, value, 1)
            lines[index] = filled
        return "\n".join(lines)

    def run(self):
        steps = parse(open(self.readme_path, encoding="utf-8").read())
        self.check_ports(steps)
        running = {}
        for step in steps:
            terminal = self.terminal(step.terminal)
            if step.command is None:
                self.follow(running[step.terminal], step.samples, terminal)
                continue
            command = self.fill_placeholders(step)
            if step.keeps_running:
                running[step.terminal] = step
                if any(s.text.startswith(("> ", "< ")) for s in step.samples):
                    self.interactive_ready[step.terminal] = self.opened_connections()
                terminal.type(command)
                terminal.streaming = time.monotonic()
                self.follow(step, step.samples, terminal)
                continue
            lines, status = terminal.run(command, self.timeout_for(step.command))
            if status != 0:
                raise Failed(
                    f"README line {step.line_no}: the command exited with status {status}\n"
                    + "".join(f"  printed: {l}\n" for l in lines)
                )
            mismatch = match_all(step.samples, lines)
            if mismatch:
                sample, actual = mismatch
                raise Failed(
                    f"README line {sample.line_no}: {sample.text}\n  came out: {actual}\n"
                    + "  the command's whole output:\n"
                    + "".join(f"    {l}\n" for l in lines)
                )
        self.log("every command ran as written and printed what the README shows")

    def follow(self, step, samples, terminal):
        """Awaits a running command's next lines; types its `> ` lines."""
        interactive = step.terminal in self.interactive_ready
        skipping = False
        first = True
        for sample in samples:
            if sample.text == "...":
                skipping = True
                continue
            if interactive and sample.text.startswith("> "):
                self.wait_for_connection(step)
                terminal.type(sample.text[2:])
                continue
            expected = sample
            if interactive and sample.text.startswith("< "):
                expected = Sample(sample.line_no, sample.text[2:])
            timeout = self.timeout_for(step.command) if first else self.step_timeout
            while True:
                line = terminal.next_line(timeout, f"README line {sample.line_no}")
                if interactive:
                    line = re.sub(r"^(> )+", "", line)
                if expected.matches(line):
                    break
                if not skipping:
                    raise Failed(f"README line {sample.line_no}: {sample.text}\n  came out: {line}")
            skipping = False
            first = False

    def management_base(self):
        for terminal in self.terminals.values():
            for line in terminal.lines:
                match = re.search(r"management API on (http://[^/\s]+)", line)
                if match:
                    return match.group(1)
        return None

    def opened_connections(self):
        base = self.management_base()
        if base is None:
            raise Failed("no running server printed its management API address (for /metrics)")
        try:
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError as error:
            raise Failed(f"{base}/metrics: {error}") from None
        return sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("switchboard_connections_opened_total")
        )

    def wait_for_connection(self, step):
        """Before the first typed line: the WebSocket is open (the server counted it)."""
        before = self.interactive_ready.get(step.terminal)
        if before is None:
            return
        deadline = time.monotonic() + self.build_timeout
        while self.opened_connections() <= before:
            self.terminals[step.terminal].check_still_running("the WebSocket opened")
            if time.monotonic() > deadline:
                raise Failed(f"README line {step.line_no}: the WebSocket did not open in time")
            time.sleep(0.2)
        time.sleep(0.5)  # the server counts at the upgrade; the client's open handler runs next
        self.interactive_ready[step.terminal] = None

    def check_ports(self, steps):
        text = "\n".join(s.command for s in steps if s.command) + "\n" + "\n".join(
            x.text for s in steps for x in s.samples
        )
        for port in sorted({int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", text)}):
            with socket.socket() as probe:
                # As the server binds (SO_REUSEADDR): a closed connection's TIME_WAIT on the
                # port does not count, a listener does.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise CannotStart(
                        f"port {port} on 127.0.0.1 is taken; the README's commands use it "
                        "as written: stop whatever listens there and run the check again"
                    ) from None

    def stop(self):
        for terminal in self.terminals.values():
            terminal.stop()

    def report_stderr(self):
        for number, terminal in sorted(self.terminals.items()):
            tail = "".join(terminal.stderr[-30:])
            if tail:
                print(f"--- terminal {number}, standard error (last lines):\n{tail}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    parser.add_argument("--step-timeout", type=float, default=60, help="seconds per step")
    parser.add_argument(
        "--build-timeout", type=float, default=1800,
        help="seconds for a step that runs cargo (the first one compiles) or npx (downloads)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    check = Check(args.readme, args.step_timeout, args.build_timeout)
    try:
        check.run()
        return 0
    except CannotStart as error:
        print(f"newcomer-check: cannot start: {error}", file=sys.stderr)
        return 2
    except Failed as error:
        print(f"newcomer-check: FAILED ({args.readme}): {error}", file=sys.stderr)
        check.report_stderr()
        return 1
    finally:
        check.stop()


if __name__ == "__main__":
    sys.exit(main())
