// `sentinel train`: fine-tunes a base model for compressed inference over plain-text files
// (docs/method.md section 5): LoRA plus the sentinel rows (or every weight with --full) under the
// sentinel mask, or the paper's local / scattered baselines under theirs. Progress bar, JSON-lines
// log, validation perplexity, atomic checkpoints (also on Ctrl-C) and exact --resume.
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "common.h"
#include "distributed_args.h"
#include "sentinel/core/error.h"
#include "sentinel/core/heap.h"
#include "sentinel/core/paths.h"
#include "sentinel/core/sha256.h"
#include "sentinel/engine/cuda_runtime.h"
#include "sentinel/eval/perplexity.h"
#include "sentinel/io/safetensors.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/peft_export.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/train/setup.h"
#include "sentinel/train/trainer.h"

namespace sentinel::cli {
namespace {

std::atomic<bool> g_stop{false};
const TrainHooks* g_hooks = nullptr;  // run_train_command's caller; nullptr on the command line

extern "C" void on_sigint(int) {
  g_stop = true;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

struct TrainArgs {
  ModelArgs model;
  std::vector<std::string> data;
  std::string method = "sentinel";
  SpanSamplerOptions spans;
  std::string span_unit = "word";
  std::string rows = "line";
  int64_t window = 0;
  int64_t block = 256;
  std::string layout = "stream";
  std::string ratio_range = "0.4:0.8";
  std::string span_range = "8:32";
  TrainDataOptions stream;  // seq_len, ratio and span ranges, sinks (the rest comes from above)
  std::string older_rank = "attention";  // heavy: OlderRank by name (training names its rank)
  double distill = 0.0;
  double sentinel_lr = 0.0;  // 0: --lr
  std::string init_adapter;  // start LoRA and sentinel rows from this adapter
  TrainLoopOptions loop;
  OptimizerOptions optimizer;
  std::string schedule = "linear";
  int64_t epochs = 0;  // 0: 3 when --steps is not given (the authors' recipe)
  LoraOptions lora;
  std::string lora_targets = "q_proj,k_proj,v_proj,o_proj";
  std::string lora_positions = "all";
  bool full = false;
  std::string device = "auto";
  std::string val_data;
  int64_t val_ctx = 512;
  int64_t val_tokens = 8192;
  int64_t val_span = 0;  // 0: the layout's inference default (policy.h: default_span)
  int64_t max_tokens = 0;
  std::string out;
  std::string log;
  bool resume = false;
  int64_t stop_after = 0;
  DistArgs dist;
  double bucket_mb = 25;  // DDP's bucket_cap_mb
  std::string peft_dir;   // also write the adapter as a peft folder
  std::string peft_base;  // its base_model_name_or_path
};

std::string checkpoint_path(const TrainArgs& a) { return a.out + ".checkpoint"; }

// Everything that decides the trajectory; a resumed run must agree on all of it.
nlohmann::json run_identity(const TrainArgs& a, const std::string& data_sha, const std::string& base) {
  nlohmann::json identity = {{"base_fingerprint", base}, {"method", a.method},        {"ratio", a.spans.ratio},         {"max_span", a.spans.max_length},
          {"span_unit", a.span_unit},  {"rows", a.rows},                {"window", a.window},             {"block", a.block},
          {"batch", a.loop.batch},     {"accum", a.loop.accum},          {"steps", a.loop.steps},
          {"lr", a.optimizer.lr},      {"warmup", a.optimizer.warmup},   {"schedule", a.schedule},
          {"weight_decay", a.optimizer.weight_decay}, {"clip", a.optimizer.clip},
          {"lora_rank", a.lora.rank},  {"lora_alpha", a.lora.alpha},     {"lora_dropout", a.lora.dropout},
          {"lora_targets", a.lora_targets}, {"full", a.full},            {"seed", a.loop.seed},
          {"dtype", a.model.dtype},    {"max_tokens", a.max_tokens},     {"data_sha256", data_sha},
          {"layout", a.layout},        {"seq_len", a.stream.seq_len},    {"ratio_range", a.ratio_range},
          {"span_range", a.span_range}, {"sinks", a.stream.sinks},       {"distill", a.distill},
          {"sentinel_lr", a.sentinel_lr}, {"init_adapter", a.init_adapter}};
  // Keys added later enter only when set, so runs checkpointed before them still resume.
  if (a.lora.positions != LoraPositions::All) identity["lora_positions"] = lora_positions_name(a.lora.positions);
  if (a.stream.stride_share > 0.0) identity["stride_share"] = a.stream.stride_share;
  if (a.stream.older_rank != OlderRank::Attention) identity["older_rank"] = older_rank_name(a.stream.older_rank);
  if (a.stream.copy_rate > 0.0) {
    identity["copy_rate"] = a.stream.copy_rate;
    identity["copy_len"] = a.stream.copy_len;
  }
  return identity;
}

// "0.4:0.8" -> {0.4, 0.8}; one number N means N:N.
template <typename T>
std::pair<T, T> parse_range(const std::string& text, const char* option) {
  const size_t colon = text.find(':');
  try {
    size_t used = 0;
    const std::string lo = text.substr(0, colon), hi = colon == std::string::npos ? lo : text.substr(colon + 1);
    T a, b;
    if constexpr (std::is_floating_point_v<T>) {
      a = std::stod(lo, &used);
      check(used == lo.size(), "");
      b = std::stod(hi, &used);
    } else {
      a = std::stoll(lo, &used);
      check(used == lo.size(), "");
      b = std::stoll(hi, &used);
    }
    check(used == hi.size(), "");
    return {a, b};
  } catch (const std::exception&) {
    fail(option, " takes LO:HI (or one value), got '", text, "'");
  }
}

void check_resume(const nlohmann::json& now, const std::string& saved, const std::string& path) {
  const nlohmann::json before = nlohmann::json::parse(saved, nullptr, false);
  check(!before.is_discarded(), "checkpoint ", path, " has no readable run options; start afresh without --resume");
  for (const auto& [key, value] : now.items())
    check(before.contains(key) && before[key] == value, "--resume: option '", key, "' is ", value.dump(),
          " but the checkpoint ", path, " was written with ", before.contains(key) ? before[key].dump() : "none",
          "; resume with the same options and data, or start afresh without --resume");
}

// On resume, drops log entries past the checkpoint (a run killed after its last checkpoint logged
// updates that will run again), so the log reads as one uninterrupted run.
void keep_log_until(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in.good()) return;
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("step") && j["step"].is_number() && j["step"].get<int64_t>() <= step)
      kept += line + "\n";
  }
  in.close();
  std::ofstream(path, std::ios::trunc) << kept;
}

void write_full_weights(const std::string& path, DecoderModel& model, const std::map<std::string, std::string>& meta) {
  SafetensorsWriter writer;
  for (auto& item : model->named_parameters(/*recurse=*/true)) {
    const at::Tensor t = item.value().detach().to(at::kCPU).to(at::kFloat).contiguous();
    const std::string name = item.key() == "sentinel_embeddings" ? item.key() : DecoderModelImpl::hf_name(item.key());
    writer.add(name, DType::F32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
               std::span<const uint8_t>(static_cast<const uint8_t*>(t.data_ptr()), t.nbytes()));
  }
  for (const auto& [k, v] : meta) writer.set_metadata(k, v);
  writer.set_metadata("format", kFullWeightsFormat);
  writer.write(path);
}

int run_train(TrainArgs& a) {
  keep_freed_memory_for_reuse();
  check(a.epochs >= 0, "--epochs must be >= 1, got ", a.epochs);
  // ---- validate everything before loading anything ----
  const Method method = parse_method(a.method);
  check(method == Method::Sentinel || method == Method::Local || method == Method::Scattered,
        "--method ", a.method, " cannot be trained; use sentinel, local or scattered");
  a.spans.unit = parse_span_unit(a.span_unit);
  a.spans.validate();
  check(method == Method::Sentinel || a.spans.ratio > 0 || a.window > 0, "--method ", a.method,
        " needs --ratio > 0 (the fraction of the context its mask removes)");
  // heavy is the stream layout with sentinel's heavy span scheduler (policy.h: SpanLayout::Heavy).
  const TrainLayout layout = parse_train_layout(a.layout == "heavy" ? "stream" : a.layout);
  const SpanLayout span_layout = a.layout == "heavy" ? SpanLayout::Heavy : SpanLayout::Stream;
  check(span_layout == SpanLayout::Stream || method == Method::Sentinel, "--layout heavy schedules sentinel spans; ",
        "use it with --method sentinel");
  std::tie(a.stream.ratio_min, a.stream.ratio_max) = parse_range<double>(a.ratio_range, "--ratio-range");
  std::tie(a.stream.span_min, a.stream.span_max) = parse_range<int64_t>(a.span_range, "--span-range");
  a.stream.older_rank = parse_older_rank(a.older_rank);
  check(a.distill >= 0.0 && a.distill <= 1.0, "--distill must be in [0, 1] (the weight of the KL term), got ", a.distill);
  check(a.distill == 0.0 || layout == TrainLayout::Stream, "--distill needs --layout stream (the teacher reads each ",
        "sequence's ordinary tokens; the blocks layout cuts sequences anywhere)");
  check(a.sentinel_lr >= 0.0, "--sentinel-lr must be >= 0 (0 = --lr), got ", a.sentinel_lr);
  TrainDataOptions layout_probe = a.stream;  // the data options as far as they are known before loading
  layout_probe.layout = layout;
  layout_probe.span_layout = span_layout;
  layout_probe.method = method;
  layout_probe.ratio = a.spans.ratio;
  layout_probe.block = a.block;
  layout_probe.cl_id = 0;
  layout_probe.cr_id = 1;
  layout_probe.validate();
  a.optimizer.schedule = parse_lr_schedule(a.schedule);
  a.lora.targets = parse_lora_targets(a.lora_targets);
  a.lora.positions = parse_lora_positions(a.lora_positions);
  check(a.lora.positions == LoraPositions::All || !a.full, "--full trains every weight, with no LoRA to place; drop ",
        "--lora-positions");
  check(a.lora.positions == LoraPositions::All || a.method == "sentinel", "--lora-positions sentinels needs --method ",
        "sentinel (--method ", a.method, " inserts no sentinel tokens for the LoRA to act at)");
  a.lora.validate();
  check(!(a.loop.steps > 0 && a.epochs > 0), "give --steps or --epochs, not both");
  check(a.loop.steps >= 0, "--steps must be >= 1, got ", a.loop.steps);
  check(a.loop.batch >= 1 && a.loop.accum >= 1, "--batch and --accum must be >= 1, got ", a.loop.batch, " and ",
        a.loop.accum);
  check(a.block >= 2, "--block must be >= 2 elements, got ", a.block);
  check(a.loop.val_every >= 0 && a.loop.save_every >= 0 && a.max_tokens >= 0 && a.val_span >= 0,
        "--val-every, --save-every, --max-tokens and --val-span must be >= 0");
  OptimizerOptions probe = a.optimizer;  // the number of updates is known once the data is read
  probe.total_steps = 1;
  probe.validate();
  check(!a.out.empty(), "--out FILE is required (the adapter file to write)");
  check(a.loop.val_every == 0 || !a.val_data.empty(), "--val-every needs --val-data FILE (held-out text)");
  const at::ScalarType compute = parse_dtype(a.model.dtype);
  check(a.device == "auto" || a.device == "cpu" || a.device == "cuda", "--device must be auto, cpu or cuda, got '",
        a.device, "'");
  const bool cuda = a.device == "cuda" || (a.device == "auto" && at::globalContext().hasCUDA());
  check(!cuda || at::globalContext().hasCUDA(), "--device cuda: no CUDA device is available (CUDA ", cuda_runtime_status(),
        "); use --device cpu");
  PolicyOptions val_policy;
  val_policy.method = method;
  val_policy.ratio = a.spans.ratio;
  val_policy.layout = layout == TrainLayout::Stream ? span_layout : SpanLayout::Periodic;
  val_policy.span = a.val_span > 0 ? a.val_span : default_span(val_policy.layout);
  val_policy.sinks = a.stream.sinks;
  val_policy.stride_share = a.stream.stride_share;  // validated with the data options: sentinel, heavy only
  val_policy.older_rank = a.stream.older_rank;
  val_policy.window = method == Method::Local ? a.window : 0;
  val_policy.seed = a.loop.seed;
  val_policy.cl_id = 0;  // placeholders until the model is loaded
  val_policy.cr_id = 1;
  PerplexityOptions val_window{a.val_ctx, a.val_ctx};
  // Validation reads as `sentinel ppl` does; a policy that evicts by attention, as eval lm does.
  const int64_t val_chunk = reads_attention(val_policy) ? kAttentionReadChunk : 64;
  if (!a.val_data.empty()) validate_compressed_perplexity(val_window, val_policy, val_chunk);
  check(a.bucket_mb > 0, "--bucket-mb must be > 0, got ", a.bucket_mb);
  check(a.peft_dir.empty() || a.lora.positions == LoraPositions::All, "--peft-dir: peft applies LoRA at every token, ",
        "so an adapter trained with --lora-positions sentinels cannot be exported to it; drop --peft-dir");
  check(a.peft_dir.empty() || !a.full, "--peft-dir exports LoRA adapters; --full writes every weight to --out, which ",
        "loads with --adapter (or drop --full)");

  // ---- the data-parallel job (torchrun), when launched as one ----
  const std::unique_ptr<ProcessGroup> group = join_launched_job(a.dist, cuda);
  const bool root = group == nullptr || group->is_root();  // rank 0 alone logs, checkpoints and writes
  if (group != nullptr) {
    a.loop.rank = group->rank();
    a.loop.world = group->world();
  }
  // Quiet on the other ranks: one job, one account of it.
  auto note = [root](auto... args) {
    if (root) std::fprintf(stderr, args...);
  };

  // ---- model and data ----
  // Training needs dense weights it can differentiate through: the quantized path is inference only.
  check(a.model.backend != "quantized", "sentinel train fine-tunes dense float32 weights; --backend quantized is for ",
        "inference (drop it: train loads the model dense, the adapter then runs on either path)");
  if (a.model.threads > 0) at::set_num_threads(a.model.threads);
  const int gpu = group != nullptr ? group->env().local_rank : 0;  // torchrun: one GPU per local rank
  LoadedModel loaded = load_model(a.model.model.empty() ? default_model_path() : a.model.model,
                                  LoadOptions{at::kFloat, cuda ? at::Device(at::kCUDA, gpu) : at::Device(at::kCPU)});
  note("loaded %s on %s, %d threads%s\n", loaded.name.c_str(), cuda ? "cuda" : "cpu", at::get_num_threads(),
       group != nullptr ? " per process" : "");
  std::string text;
  for (const auto& path : a.data) text += read_text_file(path);
  const std::string data_sha = sha256_bytes(text);
  const SentinelTokens st = sentinel_tokens(loaded.config);
  const bool sample_spans = method == Method::Sentinel && layout == TrainLayout::Blocks;
  TrainCorpus corpus = build_corpus(*loaded.tokenizer, text, sample_spans ? &a.spans : nullptr, a.loop.seed,
                                   parse_row_split(a.rows));
  if (a.max_tokens > 0) corpus.truncate(a.max_tokens);
  TrainDataOptions d = a.stream;
  d.layout = layout;
  d.span_layout = span_layout;
  d.method = method;
  d.ratio = a.spans.ratio;
  d.window = a.window;
  d.block = a.block;
  d.seed = a.loop.seed;
  d.cl_id = st.cl;
  d.cr_id = st.cr;
  const int64_t n_tokens = static_cast<int64_t>(corpus.tokens.size());
  TrainData data(std::move(corpus), d);
  const int64_t per_epoch = updates_per_epoch(data.n_blocks(), a.loop);
  if (a.loop.steps == 0) a.loop.steps = (a.epochs > 0 ? a.epochs : 3) * per_epoch;
  a.optimizer.total_steps = a.loop.steps;
  a.optimizer.validate();
  if (layout == TrainLayout::Stream) {
    note("data: %lld tokens, %lld sequences of %lld read with the inference schedule (%s, %lld sinks): "
                 "ratio uniform in [%g, %g], span in [%lld, %lld] per sequence%s\n", static_cast<long long>(n_tokens),
                 static_cast<long long>(data.n_blocks()), static_cast<long long>(d.seq_len), a.method.c_str(),
                 static_cast<long long>(d.sinks), d.ratio_min, d.ratio_max, static_cast<long long>(d.span_min),
                 static_cast<long long>(d.span_max), a.distill > 0 ? ", distilled from the uncompressed model" : "");
    if (d.copy_rate > 0)
      note("recurrences: %.0f%% of the sequences end with %lld tokens copied from their first half\n",
           100.0 * d.copy_rate, static_cast<long long>(d.copy_len));
  } else if (method == Method::Sentinel) {
    note("data: %lld tokens in %lld rows, %zu %s spans (max %lld), compression ratio: nominal %.3f, "
                 "achieved %.3f (rows with spans: %lld)\n", static_cast<long long>(n_tokens),
                 static_cast<long long>(data.corpus().n_rows), data.corpus().spans.size(), a.span_unit.c_str(),
                 static_cast<long long>(a.spans.max_length), a.spans.ratio, data.corpus().achieved_ratio(),
                 static_cast<long long>(data.corpus().n_rows_with_spans));
  } else {
    note("data: %lld tokens, --method %s mask removing %.3f of the context\n",
                 static_cast<long long>(n_tokens), a.method.c_str(), a.spans.ratio);
  }
  note("%lld blocks of %lld, %lld updates per epoch, %lld updates of %lld blocks\n",
               static_cast<long long>(data.n_blocks()),
               static_cast<long long>(layout == TrainLayout::Stream ? d.seq_len : a.block),
               static_cast<long long>(per_epoch), static_cast<long long>(a.loop.steps),
               static_cast<long long>(a.loop.world * a.loop.batch * a.loop.accum));

  const std::string base_fingerprint = model_fingerprint(loaded.model);  // before any weight changes
  const ModelSetup setup{method, a.full ? TrainScope::Full : TrainScope::Adapter, a.lora, a.loop.seed};
  auto trainable = prepare_for_training(loaded.model, setup);
  if (!a.init_adapter.empty()) {
    // Continued training: the adapter's LoRA (same rank and targets) and sentinel rows as the start.
    const Adapter start = load_adapter(a.init_adapter);
    check(adapter_belongs_to(start, loaded.model), "--init-adapter ", a.init_adapter, " was trained on another base model");
    check(start.lora_rank == a.lora.rank && start.lora_alpha == a.lora.alpha, "--init-adapter ", a.init_adapter,
          " has LoRA r=", start.lora_rank, " alpha ", start.lora_alpha, "; pass --lora-rank ", start.lora_rank,
          " --lora-alpha ", start.lora_alpha);
    at::NoGradGuard no_grad;
    load_lora(loaded.model, start.lora);
    if (start.sentinel_embeddings.defined() && method == Method::Sentinel)
      loaded.model->extra_embeddings.copy_(start.sentinel_embeddings);
    note("starting from %s\n", a.init_adapter.c_str());
  }
  if (data.needs_reader()) {
    // Each sequence is read by the model as it is now, then trained on as one masked pass.
    data.set_reader([model = loaded.model](const PolicyOptions& policy, std::span<const int32_t> tokens) mutable {
      const bool was_training = model->is_training();
      model->eval();  // no LoRA dropout while reading
      MaskedSequence sequence = read_and_replay(model, policy, tokens, kAttentionReadChunk);
      model->train(was_training);
      return sequence;
    });
  }
  Trainer trainer(loaded.model, std::move(trainable), a.optimizer, a.loop.seed);
  trainer.compute_dtype = compute;
  trainer.distill = a.distill;
  if (a.sentinel_lr > 0) trainer.optimizer().lr_scale["sentinel_embeddings"] = a.sentinel_lr / a.optimizer.lr;
  if (group != nullptr) {
    const auto bytes = static_cast<int64_t>(a.bucket_mb * (1 << 20));
    trainer.distribute(*group, BucketOptions{bytes, std::min<int64_t>(bytes, 1 << 20)});
  }
  const nlohmann::json identity = run_identity(a, data_sha, base_fingerprint);
  a.loop.checkpoint = checkpoint_path(a);
  a.loop.checkpoint_metadata = {{"run", identity.dump()}};
  if (a.resume) {
    const auto meta = trainer.load_checkpoint(a.loop.checkpoint);
    check_resume(identity, meta.count("run") ? meta.at("run") : "", a.loop.checkpoint);
    note("resumed from %s at update %lld\n", a.loop.checkpoint.c_str(), static_cast<long long>(trainer.steps_done()));
  }

  std::vector<int32_t> val_ids;
  if (!a.val_data.empty()) {
    val_ids = loaded.tokenizer->encode(read_text_file(a.val_data), /*add_bos=*/true, SpecialTokens::Ignore);
    if (static_cast<int64_t>(val_ids.size()) > a.val_tokens) val_ids.resize(a.val_tokens);
    if (method == Method::Sentinel) {
      val_policy.cl_id = st.cl;
      val_policy.cr_id = st.cr;
    }
  }
  const std::string log_path = a.log.empty() ? a.out + ".log.jsonl" : a.log;
  if (a.resume && root) keep_log_until(log_path, trainer.steps_done());
  std::ofstream log;  // rank 0's; the other ranks' updates are the same updates
  if (root) {
    log.open(log_path, a.resume ? std::ios::app : std::ios::trunc);
    check(log.good(), "cannot write the log '", log_path, "'; pass --log FILE in a writable folder");
  }

  // The command line's bar; a caller in-process (run_train_command) shows its own.
  ProgressBar bar("train", root && g_hooks == nullptr ? a.loop.steps : 0, "upd", trainer.steps_done());
  const auto start = std::chrono::steady_clock::now();
  int64_t tokens_seen = 0;
  TrainCallbacks callbacks;
  callbacks.on_step = [&](const StepResult& r) {
    tokens_seen += r.n_elements;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double tps = s > 0 ? tokens_seen / s : 0;
    if (a.stop_after > 0 && r.step == a.stop_after) g_stop = true;  // as Ctrl-C would
    if (!root) return;
    const nlohmann::json line = {{"step", r.step}, {"loss", r.loss}, {"ce", r.ce}, {"kl", r.kl}, {"lr", r.lr}, {"grad_norm", r.grad_norm},
                                 {"tokens", r.n_elements}, {"targets", r.n_targets}, {"tokens_per_s", tps}, {"elapsed_s", s},
                                 {"world_size", a.loop.world}, {"steps", a.loop.steps}};
    log << line.dump() << "\n" << std::flush;
    if (g_hooks != nullptr && g_hooks->on_step && !g_hooks->on_step(line)) g_stop = true;
    char extra[96];
    std::snprintf(extra, sizeof extra, "loss %.4f  %.0f tok/s", r.loss, tps);
    bar.update(r.step, extra);
  };
  callbacks.on_validate = [&](int64_t step) {
    if (!root) return;  // the others wait for rank 0 at the next update's first collective
    DecoderModel& model = trainer.model();
    model->eval();
    at::NoGradGuard no_grad;
    const PerplexityResult v = compressed_perplexity(model, val_ids, val_window, val_policy, val_chunk);
    log << nlohmann::json{{"step", step}, {"val_ppl", v.ppl}, {"val_tokens", v.n_tokens},
                          {"val_achieved_ratio", v.achieved_ratio()}, {"val_method", a.method},
                          {"val_span", val_policy.span}}
               .dump()
        << "\n" << std::flush;
    std::fprintf(stderr, "\nupdate %lld: validation ppl %.4f (%s, achieved ratio %.3f)\n", static_cast<long long>(step),
                 v.ppl, describe(val_policy).c_str(), v.achieved_ratio());
  };

  g_stop = false;
  // On the command line Ctrl-C stops at the next update; a caller in-process (run_train_command)
  // keeps its own signal handling and stops through its hook.
  if (g_hooks == nullptr) {
    std::signal(SIGINT, on_sigint);
    std::signal(SIGTERM, on_sigint);  // torchrun stops its workers with SIGTERM
  }
  const TrainOutcome outcome = run_training(trainer, data, a.loop, callbacks, &g_stop);
  if (g_hooks == nullptr) {
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
  }
  bar.finish();
  if (!root) return outcome == TrainOutcome::Stopped ? 130 : 0;

  std::map<std::string, std::string> meta = {
      {"method", a.method},
      {"ratio", std::to_string(a.spans.ratio)},
      {"achieved_ratio", std::to_string(sample_spans ? data.corpus().achieved_ratio() : a.spans.ratio)},
      {"layout", a.layout},
      {"ratio_range", a.ratio_range},
      {"span_range", a.span_range},
      {"seq_len", std::to_string(d.seq_len)},
      {"sinks", std::to_string(d.sinks)},
      {"stride_share", std::to_string(d.stride_share)},
      {"older_rank", older_rank_name(d.older_rank)},
      {"copy_rate", std::to_string(d.copy_rate)},
      {"copy_len", std::to_string(d.copy_len)},
      {"distill", std::to_string(a.distill)},
      {"span_unit", a.span_unit},
      {"rows", a.rows},
      {"max_span", std::to_string(a.spans.max_length)},
      {"block", std::to_string(a.block)},
      {"steps", std::to_string(trainer.steps_done())},
      {"training_data", nlohmann::json(a.data).dump()},
      {"training_data_sha256", data_sha},
      {"seed", std::to_string(a.loop.seed)},
      {"run", identity.dump()}};
  if (a.full) {
    meta["base_model"] = loaded.name;
    meta["base_fingerprint"] = base_fingerprint;  // the weights before training: what --adapter is applied to
    write_full_weights(a.out, loaded.model, meta);
  } else {
    save_adapter(a.out, trained_adapter(loaded.model, setup, meta), loaded.model, loaded.name);
    if (!a.peft_dir.empty()) {
      export_peft(load_adapter(a.out), a.peft_dir, PeftExportOptions{a.peft_base.empty() ? loaded.path : a.peft_base,
                                                                     a.lora.dropout});
      std::fprintf(stderr, "peft folder %s written (PeftModel.from_pretrained loads it; README.md there adds the "
                   "sentinel rows)\n", a.peft_dir.c_str());
    }
  }
  if (outcome == TrainOutcome::Stopped) {
    std::fprintf(stderr, "interrupted after update %lld of %lld: checkpoint %s, weights so far in %s; continue with "
                 "the same command plus --resume\n", static_cast<long long>(trainer.steps_done()),
                 static_cast<long long>(a.loop.steps), a.loop.checkpoint.c_str(), a.out.c_str());
    return 130;
  }
  std::fprintf(stderr, "trained %lld updates: %s written (log %s, checkpoint %s)\n",
               static_cast<long long>(trainer.steps_done()), a.out.c_str(), log_path.c_str(), a.loop.checkpoint.c_str());
  return 0;
}

}  // namespace

Runner register_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  a->loop.batch = 4;  // defaults: the authors' recipe, 12 blocks of 256 per update (method.md section 5)
  a->loop.accum = 3;
  CLI::App* cmd = app.add_subcommand(
      "train", "Fine-tune the model for compressed inference (LoRA + sentinel embeddings, or a baseline's mask)");
  cmd->footer(
      "Writes --out (an adapter: LoRA tensors under peft's names plus the sentinel rows, tied to the base model),\n"
      "--out.checkpoint (resume state) and --out.log.jsonl. Use it with generate/ppl --adapter FILE.\n"
      "Ctrl-C writes a checkpoint and the adapter so far; the same command with --resume continues exactly.\n"
      "Data parallel: torchrun --nproc-per-node N --no-python build/sentinel train ... (--batch is per process;\n"
      "rank 0 writes the log, checkpoints and adapter; docs/training.md, \"Many processes, many machines\").");
  add_model_options(*cmd, a->model);
  cmd->get_option("--dtype")->description(
      "Compute dtype: float32, or bfloat16 (autocast: matmuls in bfloat16, weights and optimiser state float32)");
  cmd->add_option("data", a->data, "Training text files (plain text, one row per line, concatenated)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--method", a->method,
                  "sentinel (spans wrapped in <CL>/<CR>, method.md section 5), or a paper baseline fine-tuned under "
                  "its own mask without sentinels: local, scattered")
      ->capture_default_str();
  cmd->add_option("--ratio", a->spans.ratio,
                  "Fraction of the context to remove. stream: the validation ratio (training draws from --ratio-range); "
                  "blocks: the span sampler's target (sentinel) or the mask's budget (local, scattered), its achieved "
                  "ratio printed beside it")
      ->capture_default_str();
  cmd->add_option("--max-span", a->spans.max_length, "sentinel: longest span, in --span-unit units (lengths uniform in [2, N])")
      ->capture_default_str();
  cmd->add_option("--span-unit", a->span_unit,
                  "sentinel: sample spans over whitespace words (the authors') or over tokens")
      ->check(CLI::IsMember({"word", "token"}))
      ->capture_default_str();
  cmd->add_option("--rows", a->rows,
                  "sentinel: the rows spans are sampled in (rows under 30 words get none): line (WikiText keeps a "
                  "paragraph per line), or paragraph (lines up to a blank line: hard-wrapped books)")
      ->check(CLI::IsMember({"line", "paragraph"}))
      ->capture_default_str();
  cmd->add_option("--window", a->window, "local: a fixed window of N tokens instead of the paper's relative one (0)")
      ->capture_default_str();
  cmd->add_option("--layout", a->layout,
                  "How examples are laid out. stream: sequences of --seq-len tokens read with the inference schedule "
                  "(sinks + window + spans as inference compresses them; ratio and span drawn per sequence from "
                  "--ratio-range and --span-range). heavy: the same with sentinel's heavy layout (summaries beside "
                  "H2O's heavy hitters), each sequence read by the model in training to find its schedule, then "
                  "trained on in one masked pass. blocks: the paper's random --max-span spans in --block blocks")
      ->check(CLI::IsMember({"stream", "heavy", "blocks"}))
      ->capture_default_str();
  cmd->add_option("--seq-len", a->stream.seq_len, "stream: ordinary tokens per training sequence")->capture_default_str();
  cmd->add_option("--ratio-range", a->ratio_range, "stream: LO:HI, each sequence's ratio uniform in it")
      ->capture_default_str();
  cmd->add_option("--span-range", a->span_range, "stream: LO:HI tokens, each sequence's span length uniform in it")
      ->capture_default_str();
  cmd->add_option("--sinks", a->stream.sinks, "stream: initial tokens never compressed (as at inference)")
      ->capture_default_str();
  add_stride_share_option(*cmd, a->stream.stride_share,
                          "0: training recipes name their share; the shipped heavy adapter's stage 9 used 1");
  add_older_rank_option(*cmd, a->older_rank, "attention: training recipes name their rank");
  cmd->add_option("--copy-rate", a->stream.copy_rate,
                  "stream: fraction of sequences that end with a recurrence: their last --copy-len tokens replaced by "
                  "a passage from their first half, so the loss there rewards summaries that keep exact tokens "
                  "(recall beyond the window)")
      ->capture_default_str();
  cmd->add_option("--copy-len", a->stream.copy_len, "stream: tokens in each recurrence (--copy-rate)")
      ->capture_default_str();
  cmd->add_option("--distill", a->distill,
                  "stream: weight of KL(uncompressed base model || compressed student) in the loss, the rest "
                  "cross-entropy (0 = cross-entropy only; the teacher is the base weights without LoRA)")
      ->capture_default_str();
  cmd->add_option("--init-adapter", a->init_adapter,
                  "Start from this adapter's LoRA and sentinel rows (continued training; same --lora-rank/alpha/targets)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--sentinel-lr", a->sentinel_lr, "Learning rate of the <CL>/<CR> rows (0 = --lr)")->capture_default_str();
  cmd->add_option("--block", a->block, "blocks: elements per training block, sentinels included")->capture_default_str();
  cmd->add_option("--batch", a->loop.batch, "Blocks per forward pass")->capture_default_str();
  cmd->add_option("--accum", a->loop.accum, "Forward passes per update (gradient accumulation)")->capture_default_str();
  cmd->add_option("--lr", a->optimizer.lr, "Peak learning rate (AdamW)")->capture_default_str();
  cmd->add_option("--warmup", a->optimizer.warmup, "Updates of linear warm-up from 0")->capture_default_str();
  cmd->add_option("--schedule", a->schedule, "Decay after warm-up: linear, cosine (to 0 at the last update) or constant")
      ->check(CLI::IsMember({"linear", "cosine", "constant"}))
      ->capture_default_str();
  cmd->add_option("--weight-decay", a->optimizer.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  cmd->add_option("--clip", a->optimizer.clip, "Clip the global gradient norm to this (0 = off)")->capture_default_str();
  cmd->add_option("--steps", a->loop.steps, "Updates to run (default: --epochs passes over the blocks)");
  cmd->add_option("--epochs", a->epochs, "Passes over the training blocks (default 3, the authors' recipe, when --steps is not given)");
  cmd->add_option("--lora-rank", a->lora.rank, "LoRA rank r")->capture_default_str();
  cmd->add_option("--lora-alpha", a->lora.alpha, "LoRA alpha (scaling alpha / r)")->capture_default_str();
  cmd->add_option("--lora-dropout", a->lora.dropout, "Dropout on the LoRA input while training")->capture_default_str();
  cmd->add_option("--lora-targets", a->lora_targets,
                  "Comma-separated projections to adapt: q_proj,k_proj,v_proj,o_proj (attention, the default) and/or "
                  "gate_proj,up_proj,down_proj (MLP)")
      ->capture_default_str();
  cmd->add_option("--lora-positions", a->lora_positions,
                  "Where the LoRA acts: all (every token, as peft) or sentinels (<CL>/<CR> only: ordinary tokens then "
                  "compute exactly as the base model and only the span summaries are learned; not loadable by peft)")
      ->check(CLI::IsMember({"all", "sentinels"}))
      ->capture_default_str();
  cmd->add_flag("--full", a->full,
                "Full fine-tuning: train every weight (no LoRA); --out then holds all weights by Hugging Face name and "
                "loads with --adapter on the same --model (--backend dense)");
  cmd->add_option("--device", a->device, "auto (CUDA when present), cpu or cuda")->capture_default_str();
  cmd->add_option("--val-data", a->val_data, "Held-out text for validation perplexity (compressed, as at inference)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--val-every", a->loop.val_every, "Validate every N updates (0 = never)")->capture_default_str();
  cmd->add_option("--val-ctx", a->val_ctx, "Validation window (tokens)")->capture_default_str();
  cmd->add_option("--val-tokens", a->val_tokens, "Validate on the first N tokens of --val-data")->capture_default_str();
  cmd->add_option("--val-span", a->val_span,
                  "sentinel: tokens per span when validating (0 = what inference reads the layout with: " +
                      default_spans_help() + ")")
      ->capture_default_str();
  cmd->add_option("--save-every", a->loop.save_every, "Write a checkpoint every N updates (0 = at the end and on Ctrl-C)")
      ->capture_default_str();
  cmd->add_option("--max-tokens", a->max_tokens, "Train on the first N tokens of the data only (0 = all)")
      ->capture_default_str();
  cmd->add_option("-o,--out", a->out, "Adapter file to write (safetensors)")->required();
  cmd->add_option("--log", a->log, "JSON-lines log (default: --out + .log.jsonl)");
  cmd->add_flag("--resume", a->resume, "Continue from --out.checkpoint (same options and data required)");
  cmd->add_option("--stop-after", a->stop_after,
                  "Stop after update N exactly as Ctrl-C does (checkpoint, adapter so far, exit code 130), "
                  "for scripted runs split over several jobs (0 = off)")
      ->capture_default_str();
  cmd->add_option("--seed", a->loop.seed, "Seed of spans, LoRA init, dropout and block order")->capture_default_str();
  add_dist_options(*cmd, a->dist);
  cmd->add_option("--peft-dir", a->peft_dir,
                  "Also write the adapter as a peft folder (adapter_config.json + adapter_model.safetensors, "
                  "sentinel_embeddings.safetensors, README.md) that PeftModel.from_pretrained loads");
  cmd->add_option("--peft-base", a->peft_base,
                  "base_model_name_or_path recorded in adapter_config.json (default: the --model path)");
  cmd->add_option("--bucket-mb", a->bucket_mb,
                  "Under torchrun: MiB of gradients per all-reduce bucket, each sent as soon as backward has filled it "
                  "(DDP's bucket_cap_mb)")
      ->capture_default_str();
  return [a] { return run_train(*a); };
}

int run_train_command(const std::vector<std::string>& args, const TrainHooks& hooks) {
  // The run's state (g_stop, g_hooks) is the process's: one run at a time.
  static std::mutex one_run;
  std::unique_lock<std::mutex> running(one_run, std::try_to_lock);
  check(running.owns_lock(), "a training run is already running in this process; wait for it to end");
  CLI::App app{"sentinel"};
  const Runner runner = register_train(app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes the arguments last first
  reversed.push_back("train");
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    fail(e.what(), " (see sentinel train --help)");
  }
  g_hooks = &hooks;
  struct Unhook {
    ~Unhook() { g_hooks = nullptr; }
  } unhook;
  return runner();
}

}  // namespace sentinel::cli
