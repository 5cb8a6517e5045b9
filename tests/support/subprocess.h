// Runs a program as a child process and captures its stdout, stderr and exit code separately,
// for the end-to-end tests of the `sentinel` CLI. POSIX only (fork/exec/poll); no shell is
// involved, so arguments need no quoting. Header-only: the suites compile no extra sources.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sentinel/core/error.h"

namespace sentinel::testing {

struct ProcessResult {
  int exit_code = -1;    // the child's exit status; 128 + signal number if it was killed
  std::string out, err;  // everything it wrote to stdout and stderr
};

// Where the child's stderr goes: captured apart (ProcessResult::err), or into the stdout pipe, as
// `2>&1` into one file or pipe mixes them (ProcessResult::out holds both, in the order written).
enum class Stderr { Apart, IntoStdout };

// Runs `program` with `args` (argv[1..]) and waits for it. Reads both pipes with poll() so a child
// that fills one pipe while we wait on the other cannot deadlock. Throws Error if it cannot start.
inline ProcessResult run_process(const std::string& program, const std::vector<std::string>& args,
                                 Stderr stderr_to = Stderr::Apart) {
  int out_pipe[2], err_pipe[2], exec_pipe[2];
  check(::pipe(out_pipe) == 0 && ::pipe(err_pipe) == 0 && ::pipe2(exec_pipe, O_CLOEXEC) == 0,
        "pipe() failed: ", std::strerror(errno));
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  check(pid >= 0, "fork() failed: ", std::strerror(errno));
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(stderr_to == Stderr::IntoStdout ? out_pipe[1] : err_pipe[1], STDERR_FILENO);
    ::close(out_pipe[0]), ::close(out_pipe[1]), ::close(err_pipe[0]), ::close(err_pipe[1]);
    ::close(exec_pipe[0]);
    ::execv(program.c_str(), argv.data());
    const int code = errno;  // exec failed: tell the parent through the close-on-exec pipe
    [[maybe_unused]] ssize_t n = ::write(exec_pipe[1], &code, sizeof code);
    ::_exit(127);
  }
  ::close(out_pipe[1]), ::close(err_pipe[1]), ::close(exec_pipe[1]);

  ProcessResult result;
  std::array<pollfd, 2> fds{pollfd{out_pipe[0], POLLIN, 0}, pollfd{err_pipe[0], POLLIN, 0}};
  std::array<std::string*, 2> sinks{&result.out, &result.err};
  int open = 2;
  char buffer[65536];
  while (open > 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  int exec_errno = 0;
  const bool exec_failed = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno;
  ::close(exec_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  check(!exec_failed, "cannot run '", program, "': ", std::strerror(exec_errno));
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// The lines of a captured stream, without their '\n' (a last line without one is kept).
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t end = text.find('\n', begin);
    lines.push_back(text.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return lines;
}

// The words a POSIX shell (/bin/sh) reads `command` as: what a shell-quoted command line stands for.
// Words must hold no newline (they come back one per line).
inline std::vector<std::string> shell_words(const std::string& command) {
  const ProcessResult r = run_process("/bin/sh", {"-c", "for word in " + command + "; do printf '%s\\n' \"$word\"; done"});
  check(r.exit_code == 0, "/bin/sh could not read the command line: ", command, "\n", r.err);
  return split_lines(r.out);
}

// A failed command as a test message: its exit code, then the start of its stdout and stderr.
inline std::string describe(const ProcessResult& r) {
  return "exit code " + std::to_string(r.exit_code) + "\n--- stdout ---\n" + r.out.substr(0, 2000) +
         "\n--- stderr ---\n" + r.err.substr(0, 3000);
}

// A fresh directory under $TMPDIR (or /tmp) named prefix-XXXXXX; the caller removes it.
inline std::string make_temp_dir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  check(::mkdtemp(pattern.data()) != nullptr, "mkdtemp failed for ", pattern, ": ", std::strerror(errno));
  return pattern;
}

}  // namespace sentinel::testing
