using System.Text.Json;
using System.Text.Json.Serialization;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Scaling;

/// <summary>How a choice's log-likelihood is normalised before choices are compared.</summary>
public enum LengthNormalization
{
    /// <summary>Sum of the continuation's token log-probabilities (favours short answers).</summary>
    [JsonStringEnumMemberName("none")] None,

    /// <summary>Mean per continuation token (depends on the tokenizer).</summary>
    [JsonStringEnumMemberName("token")] PerToken,

    /// <summary>Sum divided by the continuation's length in characters — lm-evaluation-harness's <c>acc_norm</c>,
    /// comparable across tokenizers; the default.</summary>
    [JsonStringEnumMemberName("char")] PerCharacter,
}

/// <summary>One multiple-choice question, a line <c>{"question", "choices": [...], "answer": index}</c>.</summary>
public sealed record MultipleChoiceItem(string Question, IReadOnlyList<string> Choices, int Answer);

/// <summary>Accuracy over a set, with each item's chosen index and per-choice scores.</summary>
public sealed record MultipleChoiceResult(int Items, int Correct, double Accuracy, IReadOnlyList<int> Predictions,
    IReadOnlyList<double[]> Scores);

/// <summary>
/// Log-likelihood multiple choice for decoders (the way BoolQ/PIQA/HellaSwag-style sets are scored in
/// lm-evaluation-harness): each choice is the continuation of the question — a space, then the choice's text —
/// scored by the log-probability the model gives its tokens after the question's tokens (plus a begin-of-text token
/// when the model has one), normalised by <see cref="LengthNormalization"/>; the highest score is the answer.
/// Question and continuation are tokenized separately, so a choice's tokens never depend on the question's end.
/// Contexts longer than the model's positions lose their oldest tokens.
/// </summary>
public static class MultipleChoiceEvaluator
{
    /// <summary>Reads a JSONL file; a bad line is one <see cref="DataFormatException"/> naming file and line.</summary>
    public static IReadOnlyList<MultipleChoiceItem> ReadJsonl(string path)
    {
        if (!File.Exists(path)) throw new DataFormatException($"{path}: not found");
        var items = new List<MultipleChoiceItem>();
        int number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            items.Add(ParseLine(line, $"{path}:{number}"));
        }
        if (items.Count == 0) throw new DataFormatException($"{path}: no questions");
        return items;
    }

    public static MultipleChoiceItem ParseLine(string line, string where)
    {
        try
        {
            using var doc = JsonDocument.Parse(line, new JsonDocumentOptions { MaxDepth = 8 });
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new DataFormatException($"{where}: not a JSON object");
            if (!root.TryGetProperty("question", out var q) || q.ValueKind != JsonValueKind.String)
                throw new DataFormatException($"{where}: needs a string \"question\"");
            if (!root.TryGetProperty("choices", out var c) || c.ValueKind != JsonValueKind.Array ||
                c.GetArrayLength() < 2 || c.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
                throw new DataFormatException($"{where}: needs \"choices\", an array of at least two strings");
            if (!root.TryGetProperty("answer", out var a) || a.ValueKind != JsonValueKind.Number ||
                !a.TryGetInt32(out int answer) || answer < 0 || answer >= c.GetArrayLength())
                throw new DataFormatException(
                    $"{where}: needs \"answer\", the index of the right choice (0..{c.GetArrayLength() - 1})");
            var choices = c.EnumerateArray().Select(e => e.GetString()!).ToArray();
            if (choices.Any(string.IsNullOrEmpty)) throw new DataFormatException($"{where}: a choice is empty");
            return new MultipleChoiceItem(q.GetString()!, choices, answer);
        }
        catch (JsonException e)
        {
            throw new DataFormatException($"{where}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    /// <summary>
    /// How a decoder checkpoint's text becomes ids: the Hugging Face tokenizer it carries (imported or scaled
    /// models), else the WordPiece tokenizer our language-model runs save with the model.
    /// </summary>
    public static Func<string, IReadOnlyList<int>> EncoderFrom(IReadOnlyDictionary<string, string> metadata,
        string source)
    {
        if (metadata.TryGetValue(HuggingFaceTokenizer.MetadataKey, out var hf))
        {
            var tokenizer = HuggingFaceTokenizer.FromJson(hf, source).Create();
            return text => tokenizer.EncodeToIds(text).ToArray();
        }
        if (metadata.TryGetValue(ScaleGrow.Data.Text.TextTokenizer.MetadataKey, out var wordPiece))
            return ScaleGrow.Data.Text.TextTokenizer.Load(wordPiece, source).EncodePieces;
        throw new InvalidSpecException(
            $"{source}: no tokenizer in the checkpoint ('{HuggingFaceTokenizer.MetadataKey}' or " +
            $"'{ScaleGrow.Data.Text.TextTokenizer.MetadataKey}' metadata), so its questions cannot be encoded");
    }

    public static MultipleChoiceResult Evaluate(DecoderModel model, IReadOnlyList<MultipleChoiceItem> items,
        Func<string, IReadOnlyList<int>> encode, LengthNormalization normalization = LengthNormalization.PerCharacter,
        CancellationToken cancellationToken = default)
    {
        model.eval();
        var predictions = new List<int>(items.Count);
        var scores = new List<double[]>(items.Count);
        int correct = 0;
        foreach (var item in items)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var s = Score(model, item, encode, normalization);
            int best = Array.IndexOf(s, s.Max());
            predictions.Add(best);
            scores.Add(s);
            if (best == item.Answer) correct++;
        }
        double accuracy = items.Count == 0 ? double.NaN : (double)correct / items.Count;
        return new MultipleChoiceResult(items.Count, correct, accuracy, predictions, scores);
    }

    /// <summary>The normalised log-likelihood of each choice (one batched forward pass per question).</summary>
    public static double[] Score(DecoderModel model, MultipleChoiceItem item, Func<string, IReadOnlyList<int>> encode,
        LengthNormalization normalization)
    {
        var context = new List<int>();
        if (model.Spec.BosTokenId is int bos) context.Add(bos);
        context.AddRange(encode(item.Question));
        if (context.Count == 0)
            throw new InvalidSpecException(
                "multiple choice: an empty question needs a model with a begin-of-text token");
        string separator = item.Question.Length == 0 || char.IsWhiteSpace(item.Question[^1]) ? "" : " ";
        var continuations = item.Choices.Select(c => encode(separator + c).ToArray()).ToArray();
        int vocab = model.Spec.VocabSize;
        if (continuations.Any(c => c.Length == 0))
            throw new InvalidSpecException("multiple choice: a choice encodes to no tokens");
        if (context.Concat(continuations.SelectMany(c => c)).Any(t => t < 0 || t >= vocab))
            throw new InvalidSpecException($"multiple choice: the tokenizer gives ids outside the model's vocabulary " +
                                           $"of {vocab}");

        int maxLength = model.Spec.MaxPositions + 1;
        var sequences = continuations.Select(c =>
        {
            var all = context.Concat(c).ToArray();
            return all.Length > maxLength ? all[^maxLength..] : all;
        }).ToArray();
        int length = sequences.Max(s => s.Length);
        var ids = new long[sequences.Length * length];
        for (int i = 0; i < sequences.Length; i++)
            for (int j = 0; j < sequences[i].Length; j++) ids[i * length + j] = sequences[i][j];

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var device = ComputeDevice.Of(model);
        var batch = torch.tensor(ids, device: device.Device).view(sequences.Length, length);
        var logProbs = model.forward(batch[.., ..^1]).log_softmax(-1);                     // (C, L−1, V)
        var result = new double[sequences.Length];
        for (int i = 0; i < sequences.Length; i++)
        {
            int n = Math.Min(continuations[i].Length, sequences[i].Length - 1);
            int first = sequences[i].Length - n;                                           // continuation positions
            var targets = torch.tensor(sequences[i][first..].Select(t => (long)t).ToArray(), device: device.Device);
            var picked = logProbs[i, TensorIndex.Slice(first - 1, sequences[i].Length - 1)]
                .gather(1, targets.unsqueeze(1));
            double sum = Trainer.ReadFloat(picked.sum());
            result[i] = normalization switch
            {
                LengthNormalization.PerToken => sum / n,
                LengthNormalization.PerCharacter => sum / (separator.Length + item.Choices[i].Length),
                _ => sum,
            };
        }
        return result;
    }
}
