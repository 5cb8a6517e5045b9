// The SentencePiece shapes of a tokenizer.json, each recognised whole: a structure that would change
// ids or text in a way not implemented throws Error quoting it, so a file loads exactly or not at all.
//   normalizer   Replace(" ", "▁") | Sequence[Prepend("▁"), Replace(" ", "▁")]   with pre_tokenizer null
//                (or Gemma's Split(" ", MergedWithPrevious), which finds no space left to split on)
//   pre_tokenizer Metaspace("▁", prepend_scheme first|always|never, split=false)   with normalizer null
//   decoder      Sequence[Replace("▁", " "), ByteFallback, Fuse(, Strip(" ", 1, 0))] | Metaspace("▁", ...)
#include "load_json_spm.h"

#include <nlohmann/json.hpp>

#include "sentinel/core/error.h"

namespace sentinel::detail {
namespace {

using nlohmann::json;

constexpr const char* kSpaceMark = "\xE2\x96\x81";  // "▁"

std::string type_of(const json& node) {
  return node.is_object() && node.contains("type") && node["type"].is_string() ? node["type"].get<std::string>() : "";
}

// Replace(pattern {"String": from}, content to).
bool is_replace(const json& node, const char* from, const char* to) {
  return type_of(node) == "Replace" && node.contains("pattern") && node["pattern"].is_object() &&
         node["pattern"].value("String", std::string()) == from && node.value("content", std::string()) == to &&
         !node["pattern"].contains("Regex");
}

enum class Scheme { First, Always, Never };

// Metaspace's prepend scheme: "prepend_scheme", or the older add_prefix_space (true is "always").
Scheme metaspace_scheme(const json& node, const std::string& what, const std::string& path) {
  check(node.value("replacement", std::string()) == kSpaceMark, path, ": ", what, " Metaspace replaces spaces ",
        "with something other than \"▁\": ", node.dump());
  if (node.contains("prepend_scheme") && node["prepend_scheme"].is_string()) {
    const std::string scheme = node["prepend_scheme"].get<std::string>();
    if (scheme == "first") return Scheme::First;
    if (scheme == "always") return Scheme::Always;
    check(scheme == "never", path, ": ", what, " Metaspace prepend_scheme '", scheme, "' is not first, always or never");
    return Scheme::Never;
  }
  const bool add_prefix_space = !node.contains("add_prefix_space") || node["add_prefix_space"].get<bool>();
  return add_prefix_space ? Scheme::Always : Scheme::Never;
}

// Gemma's Split(" ", MergedWithPrevious): it runs after a normalizer has replaced every space, so it
// never finds one and leaves each text segment whole.
bool is_space_split(const json& node) {
  return type_of(node) == "Split" && node.contains("pattern") && node["pattern"].is_object() &&
         node["pattern"].value("String", std::string()) == " " && !node["pattern"].contains("Regex") &&
         node.value("behavior", std::string()) == "MergedWithPrevious" && !node.value("invert", false);
}

SpaceMarker space_marker_of(const json& root, const std::string& path) {
  const json normalizer = root.value("normalizer", json());
  json pre = root.value("pre_tokenizer", json());
  if (!normalizer.is_null() && is_space_split(pre)) pre = json();
  if (!pre.is_null()) {
    check(normalizer.is_null(), path, ": a SentencePiece tokenizer.json with both a normalizer and a pre_tokenizer ",
          "is not supported: normalizer ", normalizer.dump(), ", pre_tokenizer ", pre.dump());
    check(type_of(pre) == "Metaspace", path, ": pre_tokenizer is not one of the supported SentencePiece shapes ",
          "(null, or Metaspace(\"▁\", split=false)): ", pre.dump());
    // split=true (the default) cuts the text before every "▁", so merges never cross words.
    check(pre.contains("split") && !pre["split"].get<bool>(), path, ": Metaspace pre_tokenizer with split=true is ",
          "not supported (only split=false, as transformers writes for Llama and Mistral): ", pre.dump());
    switch (metaspace_scheme(pre, "pre_tokenizer", path)) {
      case Scheme::First: return SpaceMarker::MetaspaceFirst;
      case Scheme::Always: return SpaceMarker::MetaspaceAlways;
      case Scheme::Never: return SpaceMarker::MetaspaceNever;
    }
  }
  const std::string unsupported = ": normalizer is not one of the supported SentencePiece shapes (Replace(\" \", "
                                  "\"▁\"), Sequence[Prepend(\"▁\"), Replace(\" \", \"▁\")], or null with a Metaspace "
                                  "pre_tokenizer): ";
  check(!normalizer.is_null(), path, unsupported, "null");
  if (is_replace(normalizer, " ", kSpaceMark)) return SpaceMarker::Replace;
  const json steps = normalizer.is_object() ? normalizer.value("normalizers", json()) : json();
  check(type_of(normalizer) == "Sequence" && steps.is_array() && steps.size() == 2 &&
            type_of(steps[0]) == "Prepend" && steps[0].value("prepend", std::string()) == kSpaceMark &&
            is_replace(steps[1], " ", kSpaceMark),
        path, unsupported, normalizer.dump());
  return SpaceMarker::PrefixEverySegment;
}

}  // namespace

SentencePieceJsonShape sentencepiece_shape(const json& root, const std::string& path) {
  SentencePieceJsonShape shape{};
  shape.space_marker = space_marker_of(root, path);

  const json decoder = root.value("decoder", json());
  if (type_of(decoder) == "Metaspace") {
    shape.prefix_decoding =
        metaspace_scheme(decoder, "decoder", path) == Scheme::Never ? PrefixDecoding::Keep : PrefixDecoding::Metaspace;
    shape.byte_fallback_decoder = false;
    return shape;
  }
  const json steps = decoder.is_object() ? decoder.value("decoders", json()) : json();
  const bool sequence = type_of(decoder) == "Sequence" && steps.is_array() && (steps.size() == 3 || steps.size() == 4) &&
                        is_replace(steps[0], kSpaceMark, " ") && type_of(steps[1]) == "ByteFallback" &&
                        type_of(steps[2]) == "Fuse";
  const bool strip = sequence && steps.size() == 4 && type_of(steps[3]) == "Strip" &&
                     steps[3].value("content", std::string()) == " " && steps[3].value("start", -1) == 1 &&
                     steps[3].value("stop", -1) == 0;
  check(sequence && (steps.size() == 3 || strip), path, ": decoder is not one of the supported SentencePiece ",
        "shapes (Sequence[Replace(\"▁\", \" \"), ByteFallback, Fuse, Strip(\" \", 1, 0)], the same without Strip, ",
        "or Metaspace): ", decoder.dump());
  shape.prefix_decoding = strip ? PrefixDecoding::WholeText : PrefixDecoding::Keep;
  shape.byte_fallback_decoder = true;
  return shape;
}

std::string normalized_added_token(const std::string& content, SpaceMarker marker) {
  if (marker != SpaceMarker::Replace && marker != SpaceMarker::PrefixEverySegment) return content;
  std::string out = marker == SpaceMarker::PrefixEverySegment && !content.empty() ? kSpaceMark : "";
  for (char c : content) {
    if (c == ' ') {
      out += kSpaceMark;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> sentencepiece_pieces(const std::vector<std::string>& tokens, const SentencePieceJsonShape& shape,
                                              const std::vector<int32_t>& normalized_added_ids) {
  const bool byte_fallback_decoder = shape.byte_fallback_decoder;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::string> pieces;
  pieces.reserve(tokens.size());
  for (const std::string& token : tokens) {
    // ByteFallback: a token of six bytes "<0x" hex hex ">" is that byte (u8::from_str_radix).
    if (byte_fallback_decoder && token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' &&
        hex(token[3]) >= 0 && hex(token[4]) >= 0) {
      pieces.emplace_back(1, static_cast<char>(hex(token[3]) * 16 + hex(token[4])));
      continue;
    }
    std::string piece;
    for (size_t i = 0; i < token.size(); ++i) {
      if (token.compare(i, 3, kSpaceMark) == 0) {
        piece.push_back(' ');
        i += 2;
      } else {
        piece.push_back(token[i]);
      }
    }
    pieces.push_back(std::move(piece));
  }
  for (int32_t id : normalized_added_ids) {
    pieces[id] = sentencepiece_pieces({normalized_added_token(tokens[id], shape.space_marker)}, shape, {})[0];
  }
  return pieces;
}

}  // namespace sentinel::detail
