using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using ScaleGrow.Data;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Quantization;
using ScaleGrow.Storage;

namespace ScaleGrow.Runs;

/// <summary>An uploaded file, identified by its name in the <c>uploads</c> container and the ETag it had.</summary>
public sealed record UploadRef(string Name, string ETag);

public sealed record UploadValidation(bool Valid, string? Error, string? Arch, long Parameters, string? Calibration);

public sealed record UploadOutcome(string Status, string Name, string? Artifact, string Report, string? Error);

/// <summary>
/// Quantize-on-upload's steps. An upload is hostile input: size-checked before it is read, parsed by the hostile-input
/// checkpoint reader, its tensors checked against its own spec. A rejected file gets an error report and is moved to
/// <c>rejected</c>; nothing is retried forever (validation failures are results, not exceptions).
/// </summary>
public sealed class UploadSteps(IArtifactStore store)
{
    public const string Uploads = "uploads", Quantized = "quantized", Rejected = "rejected";

    /// <summary>Largest upload accepted (bytes).</summary>
    public long MaxUploadBytes { get; init; } = 2L << 30;

    /// <summary>The orchestration instance for an upload: the same blob version always maps to the same id.</summary>
    public static string InstanceIdFor(UploadRef upload)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{Uploads}/{upload.Name}@{upload.ETag}"));
        return "upload-" + Convert.ToHexStringLower(hash)[..32];
    }

    public async Task<UploadValidation> ValidateAsync(UploadRef upload, CancellationToken cancellationToken = default)
    {
        string path;
        try
        {
            path = PathOf(Uploads, upload.Name);
        }
        catch (ScaleGrowException e)
        {
            return new UploadValidation(false, e.Message, null, 0, null);
        }
        var info = await store.GetInfoAsync(path, cancellationToken);
        if (info is null) return new UploadValidation(false, $"{path}: the upload no longer exists", null, 0, null);
        if (info.Length > MaxUploadBytes)
            return new UploadValidation(false, $"{path}: {info.Length} bytes is over the {MaxUploadBytes}-byte limit",
                null, 0, null);
        try
        {
            var bytes = await store.ReadAllBytesAsync(path, cancellationToken);
            if (CheckpointCodec.ReadKind(bytes, path) is { } kind && kind != CheckpointMetadata.ModelKind)
                return new UploadValidation(false, $"{path}: already a {kind}; upload a float checkpoint", null, 0, null);
            var (model, _) = ModelIO.LoadModel(bytes, path);
            using (model.Module)
            {
                info.Metadata.TryGetValue("calibration", out var calibration);
                OptionsFor(info.Metadata, path);
                return new UploadValidation(true, null, model.Spec.ArchString, ModelStats.Of(model.Spec).Parameters,
                    calibration);
            }
        }
        catch (ScaleGrowException e)
        {
            return new UploadValidation(false, e.Message.ReplaceLineEndings(" "), null, 0, null);
        }
    }

    /// <summary>Writes the error report and moves the upload aside (idempotent).</summary>
    public async Task<UploadOutcome> RejectAsync(UploadRef upload, string error, CancellationToken cancellationToken = default)
    {
        string safe = SafeName(upload.Name);
        string report = $"{Rejected}/{safe}.error.json";
        await store.WriteAsync(report, Json(new JsonObject
        {
            ["upload"] = upload.Name, ["etag"] = upload.ETag, ["status"] = "rejected", ["error"] = error,
        }), null, cancellationToken);
        try
        {
            string source = PathOf(Uploads, upload.Name);
            if (await store.GetInfoAsync(source, cancellationToken) is { } info && info.ETag == upload.ETag)
                await store.MoveAsync(source, $"{Rejected}/{safe}", cancellationToken);
        }
        catch (ScaleGrowException)
        {
            // A name the store cannot address stays where it is; the report says why it was rejected.
        }
        return new UploadOutcome("rejected", upload.Name, null, report, error);
    }

    /// <summary>How uploads are quantized unless the upload's metadata says otherwise (<c>method</c>, <c>bits</c>,
    /// <c>groupSize</c>, <c>calibration</c>).</summary>
    public QuantizationOptions Quantization { get; init; } = new() { CalibrationSamples = 256 };

    /// <summary>Test images the report's before/after accuracy is measured on (0: not measured).</summary>
    public int EvaluationSamples { get; init; } = 2000;

    /// <summary>Folder of the calibration datasets (null: their default folders).</summary>
    public string? DataDirectory { get; init; }

    /// <summary>
    /// Quantizes the upload (thesis chapter 4, <see cref="QuantizationRunner"/>: fuses a multi-branch CNN first) and
    /// writes the packed checkpoint and a report. Calibration images come from the training split of the dataset
    /// the upload's <c>calibration</c> metadata names, else the one its input shape suggests; when that is not
    /// installed here the calibrated methods fall back to round-to-nearest and the report says so. Idempotent: a
    /// retry rewrites the same two blobs.
    /// </summary>
    public async Task<UploadOutcome> QuantizeAsync(UploadRef upload, CancellationToken cancellationToken = default)
    {
        string path = PathOf(Uploads, upload.Name);
        var bytes = await store.ReadAllBytesAsync(path, cancellationToken);
        var info = await store.GetInfoAsync(path, cancellationToken);
        var meta = info?.Metadata ?? new Dictionary<string, string>();
        var options = OptionsFor(meta, path);
        var notes = new List<string>();
        var (probe, checkpointMetadata) = ModelIO.LoadModel(bytes, path);
        var spec = probe.Spec;
        probe.Module.Dispose();
        using var data = CalibrationData(spec, InputNormalization.FromMetadata(checkpointMetadata, path),
            meta.GetValueOrDefault("calibration"), notes);
        using var calibration = data is null
            ? CalibrationSet.None()
            : CalibrationSet.FromTrainingSplit(data, options.CalibrationSamples, options.Seed);
        var result = new QuantizationRunner().Run(bytes, path, new QuantizationRunRequest
        {
            Options = options, Calibration = calibration, EvaluationData = EvaluationSamples > 0 ? data : null,
        }, cancellation: cancellationToken);
        string stem = SafeName(Path.GetFileNameWithoutExtension(upload.Name));
        string artifact = $"{Quantized}/{stem}.w{options.Bits}.safetensors";
        await store.WriteAsync(artifact, result.Checkpoint, null, cancellationToken);
        string report = $"{Quantized}/{stem}.report.json";
        var json = JsonNode.Parse(result.Report.ToJson())!.AsObject();
        json["upload"] = upload.Name;
        json["etag"] = upload.ETag;
        json["status"] = "quantized";
        json["artifact"] = artifact;
        if (notes.Count > 0) json["uploadNotes"] = new JsonArray(notes.Select(n => (JsonNode)n!).ToArray());
        await store.WriteAsync(report, Json(json), null, cancellationToken);
        return new UploadOutcome("quantized", upload.Name, artifact, report, null);
    }

    /// <summary>The service's quantization options with the upload's metadata overrides, validated.</summary>
    private QuantizationOptions OptionsFor(IReadOnlyDictionary<string, string> meta, string path)
    {
        static int? Int(IReadOnlyDictionary<string, string> m, string key, string path) =>
            m.TryGetValue(key, out var v)
                ? int.TryParse(v, out var i) ? i : throw new InvalidSpecException($"{path}: metadata {key}='{v}' is not an integer")
                : null;
        var options = Quantization with
        {
            Method = meta.GetValueOrDefault("method") ?? Quantization.Method,
            Bits = Int(meta, "bits", path) ?? Quantization.Bits,
            GroupSize = Int(meta, "groupSize", path) ?? Quantization.GroupSize,
        };
        options.Validate();
        return options;
    }

    /// <summary>Calibration and evaluation images, normalised as the model was trained (<paramref name="recorded"/>;
    /// older uploads without it: the data's own statistics, and a note says so).</summary>
    private DataSplits? CalibrationData(ArchitectureSpec spec, InputNormalization? recorded, string? named,
        List<string> notes)
    {
        if (spec is TransformerSpec { Modality: TransformerModality.Text })
        {
            notes.Add("text model: no calibration images, round-to-nearest");
            return null;
        }
        string name = named ?? recorded?.Dataset ?? (spec switch
        {
            CnnSpec { InputChannels: 3 } or TransformerSpec { InputChannels: 3 } => DatasetSpec.Cifar10,
            _ => DatasetSpec.FashionMnist,
        });
        var dataSpec = new DatasetSpec(Name: name, Directory: DataDirectory,
            TestLimit: EvaluationSamples > 0 ? EvaluationSamples : 1);
        DataSplits data;
        try
        {
            dataSpec.Validate();
            data = DatasetLoader.Load(dataSpec, recorded);
        }
        catch (ScaleGrowException e) when (e is DataFormatException or InvalidSpecException)
        {
            notes.Add($"calibration data '{name}' unavailable ({e.Message.ReplaceLineEndings(" ")}); round-to-nearest");
            return null;
        }
        long[] expected = Evaluation.InputShape(spec);
        long[] actual = [data.Channels, data.Height, data.Width];
        if (expected.SequenceEqual(actual))
        {
            if (recorded is null)
                notes.Add($"the upload does not record its input normalisation ({InputNormalization.MetadataKey}): " +
                          $"calibrated with the statistics of the {name} training split");
            return data;
        }
        notes.Add($"calibration data '{name}' is [{string.Join(", ", actual)}] per sample, the model takes " +
                  $"[{string.Join(", ", expected)}]; round-to-nearest, accuracy not measured");
        data.Dispose();
        return null;
    }

    private static string PathOf(string container, string name) => $"{container}/{name}";

    /// <summary>A name safe for any store: letters, digits, '.', '-', '_'; everything else becomes '_'.</summary>
    public static string SafeName(string name)
    {
        var s = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_').ToArray());
        s = s.Trim('.');
        if (s.Length == 0) s = "upload";
        return s.Length > 200 ? s[..200] : s;
    }

    private static byte[] Json(JsonObject o) =>
        JsonSerializer.SerializeToUtf8Bytes(o, new JsonSerializerOptions { WriteIndented = true });
}
