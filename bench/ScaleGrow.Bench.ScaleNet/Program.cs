using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using ScaleGrow;
using ScaleGrow.Bench.ScaleNet;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Models;
using ScaleGrow.Models.Adapters;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Scaling;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

// ScaleNet at small scale (issue 8): (a) the pretrained model trained further, (b) ScaleNet 2x with a third of (c)'s
// steps, (c) the 2x-deep model from scratch, (d) 2x by independent copies, (e) 2x sharing without adapters; then
// mapping and adapter ablations — for a ViT on Fashion-MNIST and a Llama-style byte-level LM on the fortunes corpus.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string part = Arg("--part") ?? "all";
double scale = double.Parse(Arg("--scale") ?? "1", CultureInfo.InvariantCulture);
bool mainOnly = args.Contains("--main-only"); // rows (a)–(e) only, e.g. for a second seed
long seed = long.Parse(Arg("--seed") ?? "1", CultureInfo.InvariantCulture);
string output = Arg("--out") ?? Path.Combine(RepoRoot(), "bench", "RESULTS-scalenet.md");
ScaleGrow.NativeMath.Configure(); // before any tensor: keeps CPU convolution gradients finite (see NativeMath)
torch.set_num_threads(int.Parse(Arg("--threads") ?? "2", CultureInfo.InvariantCulture));
var total = Stopwatch.StartNew();
void Log(string s) => Console.WriteLine($"[{total.Elapsed:hh\\:mm\\:ss}] {s}");

var report = new StringBuilder();
report.AppendLine("# ScaleNet at small scale (issue 8)").AppendLine();
report.AppendLine($"- command: `nice -n 10 dotnet run -c Release --project bench/ScaleGrow.Bench.ScaleNet -- " +
                  $"{string.Join(' ', args)}`");
report.AppendLine($"- machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, " +
                  $"{RuntimeInformation.ProcessArchitecture}, TorchSharp CPU with {torch.get_num_threads()} threads " +
                  "(shared with other work; times are indicative)");
report.AppendLine($"- date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; seed {seed} (data order, init, adapters); " +
                  $"step scale {scale}");
report.AppendLine();

if (part is "all" or "vit") RunVit();
if (part is "all" or "lm") RunLm();
report.AppendLine($"Total bench time: {total.Elapsed.TotalMinutes:0.0} min.");
File.WriteAllText(output, report.ToString());
Log($"wrote {output}");
return 0;

void RunVit()
{
    int pretrainSteps = Steps(1500), scratchSteps = Steps(2100), third = scratchSteps / 3;
    Log($"ViT / Fashion-MNIST: pretrain {pretrainSteps}, scratch {scratchSteps}, others {third} steps");
    using var data = DatasetLoader.Load(new DatasetSpec(Seed: seed));
    var spec = TransformerSpec.Seed(TransformerModality.Image, data.NumClasses, headDim: 16, layers: 3, heads: 4)
        with
    { PatchSize = 7, MlpRatio = 2 };
    const double lr = 1e-3, decay = 0.05;
    IEnumerable<(Tensor, Tensor)> Batches(string purpose) =>
        BenchRunner.Forever(e => data.TrainBatches(128, Seeds.Derive(seed, purpose, 0) + e).Epoch(e));
    double Accuracy(IScaleGrowModel m) =>
        Trainer.Evaluate(m.Module, data.EvalBatches(data.Test, 1000).Epoch(0)).Accuracy * 100;

    torch.manual_seed(seed);
    var pretrained = new TransformerModel(spec);
    double pretrainSeconds =
        BenchRunner.Train(pretrained, Batches("pretrain"), pretrainSteps, lr, decay, false, null, Log);
    var pretrainedBytes = ModelIO.SaveModel(pretrained);
    var rows = new List<BenchRow>
    {
        new("pretrained (start point)", spec.ArchString, pretrainSteps, BenchRunner.Unique(pretrained),
            Accuracy(pretrained), pretrainSeconds, "D3, shared by every row below"),
    };
    RunVariants(rows, Variants(LayerMappingKind.Cyclic), pretrainedBytes, scratchSteps, third, Batches, lr, decay,
        null, Accuracy, m => $"{m:0.00}%", () => ModelFactory.Create(spec with
        {
            Layers = Enumerable.Range(0, 6).Select(i => new TransformerLayerSpec { Id = i }).ToArray(),
            NextId = 6,
        }));
    report.AppendLine("## ViT on Fashion-MNIST").AppendLine();
    report.AppendLine($"ViT, patch 7 (16 patches + class token), width 64 (4 heads × 16), MLP ratio 2; pretrained " +
                      $"depth 3, expanded to 6. AdamW lr {lr}, weight decay {decay}, batch 128, 5% warm-up + cosine " +
                      "per run, train split of 54,000 (crop + flip), accuracy on the 10,000 test images.").AppendLine();
    Table(rows, "test accuracy %");
}

void RunLm()
{
    int pretrainSteps = Steps(1200), scratchSteps = Steps(1500), third = scratchSteps / 3;
    const int context = 64, batch = 32;
    Log($"LM / fortunes: pretrain {pretrainSteps}, scratch {scratchSteps}, others {third} steps");
    var corpus = FortunesCorpus.Load("/usr/share/games/fortunes", 0.1, (int)seed);
    var heldOut = corpus.HeldOut.Take(60_000).ToArray();
    var spec = DecoderSpec.Create(FortunesCorpus.VocabSize, hidden: 128, layers: 3, heads: 4, kvHeads: 2,
        intermediate: 320, tieEmbeddings: true, maxPositions: context);
    const double lr = 2e-3, decay = 0.05;
    IEnumerable<(Tensor, Tensor)> Batches(string purpose) =>
        LanguageModeling.TrainingBatches(corpus.Train, context, batch, int.MaxValue, Seeds.Derive(seed, purpose, 0));
    double Perplexity(IScaleGrowModel m) => LanguageModeling.Perplexity(m.Module, heldOut, context, 64).Perplexity;

    torch.manual_seed(seed);
    var pretrained = new DecoderModel(spec);
    var loss = Losses.NextToken();
    double pretrainSeconds =
        BenchRunner.Train(pretrained, Batches("pretrain"), pretrainSteps, lr, decay, false, loss, Log);
    var pretrainedBytes = ModelIO.SaveModel(pretrained);
    var rows = new List<BenchRow>
    {
        new("pretrained (start point)", spec.ArchString, pretrainSteps, BenchRunner.Unique(pretrained),
            Perplexity(pretrained), pretrainSeconds, "D3, shared by every row below"),
    };
    RunVariants(rows, Variants(LayerMappingKind.Cyclic, lm: true), pretrainedBytes, scratchSteps, third, Batches, lr,
        decay, loss, Perplexity, m => $"ppl {m:0.000}", () => new DecoderModel(spec with
        {
            Layers = Enumerable.Range(0, 6).Select(i => new TransformerLayerSpec { Id = i }).ToArray(),
            NextId = 6,
        }));
    report.AppendLine("## Llama-style LM on fortunes").AppendLine();
    report.AppendLine($"Byte-level tokens (256 bytes + end-of-fortune), {corpus.Fortunes:N0} fortunes from " +
                      $"{corpus.Files} files, split by fortune 90/10 (seed {seed}): " +
                      $"{corpus.Train.Length:N0} training " +
                      $"tokens; perplexity on the first {heldOut.Length:N0} held-out tokens (context {context}). " +
                      "Decoder width 128, 4 heads / 2 KV heads, SwiGLU 320, tied embeddings; pretrained depth 3, " +
                      $"expanded to 6. AdamW lr {lr}, weight decay {decay}, batch {batch}×{context} tokens, " +
                      "5% warm-up + cosine per run.").AppendLine();
    Table(rows, "held-out perplexity (bytes)");
}

// One row a variant: from scratch at depth 6 (seeded apart), or the pretrained model, expanded by the variant's
// options, trained further on its own batches; then measured by the task's metric.
void RunVariants(List<BenchRow> rows,
    List<(string Name, ScaleNetOptions? Options, bool Scratch, string Notes)> variants, byte[] pretrainedBytes, int scratchSteps, int third, Func<string, IEnumerable<(Tensor, Tensor)>> batches,
    double lr, double decay, LossFunction? loss, Func<IScaleGrowModel, double> metric, Func<double, string> show,
    Func<IScaleGrowModel> scratchModel)
{
    foreach (var v in variants)
    {
        Log($"  {v.Name}");
        IScaleGrowModel model;
        if (v.Scratch)
        {
            torch.manual_seed(Seeds.Derive(seed, "scratch", 0));
            model = scratchModel();
        }
        else
        {
            model = ModelIO.LoadModel(pretrainedBytes, "pretrained").Model;
            if (v.Options is { } o) model = ScaleNetExpander.Expand(model, o, Seeds.Derive(seed, "expand", 0)).Model;
        }
        int steps = v.Scratch ? scratchSteps : third;
        double seconds = BenchRunner.Train(model, batches("continue"), steps, lr, decay,
            v.Options?.TrainAdaptersOnly ?? false, loss, Log);
        rows.Add(new BenchRow(v.Name, model.Spec.ArchString, steps, BenchRunner.Unique(model), metric(model),
            seconds, v.Notes));
        Log($"    -> {show(rows[^1].Metric)}");
        model.Module.Dispose();
    }
}

List<(string Name, ScaleNetOptions? Options, bool Scratch, string Notes)> Variants(LayerMappingKind mapping,
    bool lm = false)
{
    var defaults = new ScaleNetOptions { Mapping = mapping };
    var list = new List<(string, ScaleNetOptions?, bool, string)>
    {
        ("(a) pretrained, trained further", null, false, "same steps as (b), half the depth"),
        ("(b) ScaleNet 2x (default options)", defaults, false, Describe(defaults)),
        ("(c) 2x deep from scratch", null, true, "3x the steps of (b)"),
        ("(d) 2x by independent copies", defaults with { ShareWeights = false, Adapter = AdapterKind.None }, false,
            "progressive stacking, all new parameters"),
        ("(e) 2x sharing, no adapters", defaults with { Adapter = AdapterKind.None }, false, "cyclic"),
    };
    if (mainOnly) return list;
    list.AddRange(new List<(string, ScaleNetOptions?, bool, string)>
    {
        ("ablation: mapping stack", defaults with { Mapping = LayerMappingKind.Stack }, false, ""),
        ("ablation: LoRA r8", defaults with { Adapter = AdapterKind.Lora }, false, ""),
        ("ablation: adapters-only training", defaults with { TrainAdaptersOnly = true }, false,
            "shared weights frozen"),
    });
    if (!lm)
    {
        list.Add(("ablation: mapping interleave-new", defaults with { Mapping = LayerMappingKind.InterleaveNew },
            false, ""));
        list.Add(("ablation: adapters on attention only", defaults with { Where = AdapterPlacement.Attention }, false,
            ""));
        list.Add(("ablation: adapters on MLP only", defaults with { Where = AdapterPlacement.Mlp }, false, ""));
        list.Add(("ablation: bottleneck r16", defaults with { Rank = 16 }, false, ""));
        list.Add(("ablation: own norms", defaults with { OwnNorms = true }, false, ""));
    }
    return list;
}

static string Describe(ScaleNetOptions o) =>
    $"{o.Mapping.ToString().ToLowerInvariant()}, {o.Adapter} r{o.Rank}, {o.Where.ToString().ToLowerInvariant()}" +
    (o.OwnNorms ? ", own norms" : "");

void Table(List<BenchRow> rows, string metric)
{
    report.AppendLine($"| run | arch | steps | unique params | {metric} | train time s | notes |");
    report.AppendLine("|---|---|---:|---:|---:|---:|---|");
    foreach (var r in rows)
        report.AppendLine($"| {r.Name} | {r.Arch} | {r.Steps} | {r.UniqueParameters:N0} | {r.Metric:0.00} | " +
                          $"{r.Seconds:0} | {r.Notes} |");
    report.AppendLine();
    File.WriteAllText(output + ".partial", report.ToString());
}

int Steps(int n) => Math.Max(3, (int)Math.Round(n * scale));

string? Arg(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static string RepoRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "ScaleGrow.sln"))) return dir.FullName;
    return Directory.GetCurrentDirectory();
}
