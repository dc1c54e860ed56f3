using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Scaling;

/// <summary>Perplexity over a held-out token stream.</summary>
public sealed record PerplexityResult(double Perplexity, double MeanNegativeLogLikelihood, double TokenAccuracy,
    long Tokens);

/// <summary>
/// Next-token training and evaluation data for decoders, cut from one flat token stream (documents joined with an
/// end-of-text token): training takes windows of <c>context + 1</c> tokens at seeded random offsets (input = the first
/// <c>context</c>, target = the same shifted by one); evaluation tiles the stream with non-overlapping windows.
/// The loss is <see cref="Losses.NextToken"/>, run by the ordinary <see cref="Trainer"/>.
/// </summary>
public static class LanguageModeling
{
    /// <summary><paramref name="batches"/> random training batches (X, Y), each (B, context) int64.</summary>
    public static IEnumerable<(Tensor X, Tensor Y)> TrainingBatches(IReadOnlyList<int> stream, int context,
        int batchSize, int batches, long seed)
    {
        Check(stream, context, batchSize);
        var rng = new Random((int)(seed & 0x7fffffff));
        var window = new long[batchSize * (context + 1)];
        for (int b = 0; b < batches; b++)
        {
            for (int i = 0; i < batchSize; i++)
            {
                int start = rng.Next(stream.Count - context);
                for (int j = 0; j <= context; j++) window[i * (context + 1) + j] = stream[start + j];
            }
            yield return Split(torch.tensor(window).view(batchSize, context + 1)); // host: the trainer places batches
        }
    }

    /// <summary>Non-overlapping evaluation windows covering the stream (a shorter tail window included).</summary>
    public static IEnumerable<(Tensor X, Tensor Y)> EvaluationBatches(IReadOnlyList<int> stream, int context,
        int batchSize)
    {
        Check(stream, context, batchSize);
        var starts = new List<int>();
        for (int s = 0; s + 1 < stream.Count; s += context) starts.Add(s);
        for (int first = 0; first < starts.Count; first += batchSize)
        {
            var group = starts.Skip(first).Take(batchSize).ToList();
            int length = group.Max(s => Math.Min(context + 1, stream.Count - s));
            // Short tail windows are padded with the ignored target -100 (inputs padded with 0; causal attention
            // keeps padding from influencing the real positions before it).
            var ids = new long[group.Count * length];
            for (int i = 0; i < group.Count; i++)
                for (int j = 0; j < length; j++)
                    ids[i * length + j] = group[i] + j < stream.Count ? stream[group[i] + j] : -100;
            var all = torch.tensor(ids).view(group.Count, length); // host: the trainer places batches
            var x = all[.., ..^1].clamp_min(0);
            yield return (x, all[.., 1..]);
        }
    }

    /// <summary>exp(mean next-token negative log-likelihood) of <paramref name="model"/> on the stream.</summary>
    public static PerplexityResult Perplexity(nn.Module<Tensor, Tensor> model, IReadOnlyList<int> stream, int context,
        int batchSize = 16, CancellationToken cancellationToken = default)
    {
        var metrics = Trainer.Evaluate(model, EvaluationBatches(stream, context, batchSize), cancellationToken,
            Losses.NextToken());
        return new PerplexityResult(Math.Exp(metrics.Loss), metrics.Loss, metrics.Accuracy, metrics.Samples);
    }

    private static (Tensor X, Tensor Y) Split(Tensor window) => (window[.., ..^1], window[.., 1..]);

    private static void Check(IReadOnlyList<int> stream, int context, int batchSize)
    {
        if (context < 1) throw new InvalidSpecException($"language modeling: context must be positive, got {context}");
        if (batchSize < 1)
            throw new InvalidSpecException($"language modeling: batch size must be positive, got {batchSize}");
        if (stream.Count < context + 2)
            throw new InvalidSpecException(
                $"language modeling: a stream of {stream.Count} tokens is too short for windows of {context + 1}");
    }
}
