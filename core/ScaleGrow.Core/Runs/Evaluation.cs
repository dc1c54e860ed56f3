using System.Globalization;
using System.Text;
using ScaleGrow.Data;
using ScaleGrow.Models;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Runs;

/// <summary>Test-set evaluation with the numbers that matter: accuracy, loss, size, FLOPs, CPU latency.</summary>
public static class Evaluation
{
    /// <param name="device">Where the test batches go (the run's device); null: where the model is.</param>
    public static EvaluationResult Evaluate(IScaleGrowModel model, IRunData data, int batchSize, bool measureLatency,
        CancellationToken cancellationToken, ComputeDevice? device = null)
    {
        var metrics = Trainer.Evaluate(model.Module, data.TestBatches(batchSize), cancellationToken, data.Loss(0),
            device);
        if (metrics.NonFiniteOutputs > 0)
            throw NonFinite(model, data, metrics.NonFiniteOutputs, metrics.Outputs,
                "no accuracy or loss can be reported");
        var stats = ModelStats.Of(model.Spec);
        double? b1 = null, b64 = null;
        if (measureLatency)
        {
            b1 = LatencyMeter.MedianMilliseconds(model.Module, () => data.SampleInput(1), device: device);
            b64 = LatencyMeter.MedianMilliseconds(model.Module, () => data.SampleInput(64), warmup: 2, repeats: 7,
                device: device);
        }
        return new EvaluationResult
        {
            Accuracy = metrics.Accuracy, Loss = metrics.Loss, Samples = metrics.Samples,
            Perplexity = data.IsLanguageModel ? Math.Exp(metrics.Loss) : null,
            Parameters = stats.ParametersFused, Flops = stats.FlopsFused, LatencyMsBatch1 = b1, LatencyMsBatch64 = b64,
            Device = ComputeDevice.Of(model.Module).Name, Threads = torch.get_num_threads(),
        };
    }

    /// <summary>
    /// Writes one row of logits per test sample, in dataset order; returns the number of rows. The <c>index</c> column
    /// is the sample's index in the dataset's full test set (a <c>--limit</c> subset is a seeded random choice kept in
    /// file order), so a row can be joined with the original file. When any logit is NaN or infinite no file is left
    /// behind and a <see cref="NonFiniteOutputException"/> says how many.
    /// </summary>
    public static int WriteLogitsCsv(IScaleGrowModel model, IRunData data, string path)
    {
        if (data.IsLanguageModel)
            throw new InvalidSpecException(
                $"predict: {model.Spec.ArchString} is a language model; use `scalegrow eval` for its perplexity");
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = full + $".tmp-{Environment.ProcessId}";
        int rows = 0;
        long outputs = 0, nonFinite = 0;
        // Images: rows join the full test set by index; text rows are numbered in their split's order.
        IReadOnlyList<long>? testIndices = (data as ImageRunData)?.Splits.TestIndices;
        model.Module.eval();
        var device = ComputeDevice.Of(model.Module);
        using (var writer = new StreamWriter(temp, false, new UTF8Encoding(false)))
        {
            writer.WriteLine("index,label," + string.Join(",", Enumerable.Range(0, data.NumClasses).Select(c => $"logit{c}")));
            using var noGrad = torch.no_grad();
            foreach (var (x, y) in data.TestBatches(500))
            {
                using var scope = torch.NewDisposeScope();
                var logits = model.Module.forward(device.Input(x)).to(ScalarType.Float32).cpu().data<float>().ToArray();
                var labels = y.data<long>().ToArray();
                int classes = logits.Length / labels.Length;
                outputs += logits.Length;
                for (int i = 0; i < labels.Length; i++)
                {
                    var sb = new StringBuilder();
                    sb.Append(testIndices?[rows] ?? rows).Append(',').Append(labels[i]);
                    for (int c = 0; c < classes; c++)
                    {
                        float logit = logits[i * classes + c];
                        if (!float.IsFinite(logit)) nonFinite++;
                        sb.Append(',').Append(logit.ToString("R", CultureInfo.InvariantCulture));
                    }
                    writer.WriteLine(sb);
                    rows++;
                }
                x.Dispose();
                y.Dispose();
            }
        }
        if (nonFinite > 0)
        {
            File.Delete(temp);
            throw NonFinite(model, data, nonFinite, outputs, "no CSV written");
        }
        File.Move(temp, full, overwrite: true);
        return rows;
    }

    private static NonFiniteOutputException NonFinite(IScaleGrowModel model, IRunData data, long nonFinite,
        long outputs, string consequence) =>
        new($"{model.Spec.ArchString} produced {nonFinite:N0} non-finite outputs (NaN or infinite) of {outputs:N0} " +
            "on " +
            $"the {data.Name} test split; {consequence}", nonFinite, outputs);

    /// <summary>The per-sample input shape of a model (C, H, W) or (T) for text and decoders.</summary>
    public static long[] InputShape(ArchitectureSpec spec, DataSplits? data = null) =>
        ModelFamilies.TryFor(spec)?.InputShape(spec) ?? (data is null
            ? throw new InvalidSpecException("no input shape")
            : [data.Channels, data.Height, data.Width]);
}
