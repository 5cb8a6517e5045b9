// How the server reports failures: the one place that turns an exception into an HTTP status and
// an OpenAI-style error body ({"error": {"message", "type", "param", "code"}}). Library errors
// (sentinel::Error) are the client's fault unless raised while running the model; HttpError
// carries a status for the outcomes that are not 400 (busy, not found, timeout, too large).
#pragma once

#include <nlohmann/json.hpp>

#include <exception>
#include <string>

#include "sentinel/core/error.h"

namespace sentinel::server {

class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct ErrorReply {
  int status = 500;
  nlohmann::json body;  // {"error": {...}}
};

// "invalid_request_error" for 4xx, "server_error" otherwise, as OpenAI names them.
ErrorReply error_reply(int status, const std::string& message);
// Maps any exception: HttpError -> its status; sentinel::Error and JSON type errors -> 400; the
// rest (libtorch, bad_alloc) -> 500 with the first line of their message.
ErrorReply map_exception(std::exception_ptr error);

}  // namespace sentinel::server
