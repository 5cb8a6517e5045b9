// Exception -> HTTP status and OpenAI-style JSON error, in one function (map_exception).
#include "sentinel/server/errors.h"

#include <new>

namespace sentinel::server {

ErrorReply error_reply(int status, const std::string& message) {
  const char* type = status == 503   ? "unavailable_error"
                     : status == 507 ? "insufficient_storage_error"
                     : status == 404 ? "not_found_error"
                     : status == 401 ? "authentication_error"
                     : status < 500  ? "invalid_request_error"
                                     : "server_error";
  return {status, {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}}}}};
}

ErrorReply map_exception(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const HttpError& e) {
    return error_reply(e.status(), e.what());
  } catch (const Error& e) {
    return error_reply(400, e.what());
  } catch (const nlohmann::json::exception& e) {
    return error_reply(400, std::string("invalid request: ") + e.what());
  } catch (const std::bad_alloc&) {
    return error_reply(500, "out of memory while serving the request; send a shorter prompt or fewer requests");
  } catch (const std::exception& e) {
    std::string message = e.what();  // libtorch messages carry a backtrace after the first line
    return error_reply(500, "internal error: " + message.substr(0, message.find('\n')));
  } catch (...) {
    return error_reply(500, "internal error of unknown kind");
  }
}

}  // namespace sentinel::server
