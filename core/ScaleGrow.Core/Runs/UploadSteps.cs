using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Export;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Quantization;
using ScaleGrow.Storage;
using ScaleGrow.Training;

namespace ScaleGrow.Runs;

/// <summary>An uploaded file, identified by its name in the <c>uploads</c> container and the ETag it had.</summary>
public sealed record UploadRef(string Name, string ETag);

public sealed record UploadOutcome(string Status, string Name, string? Artifact, string Report, string? Error);

/// <summary>Where one upload's results go (see <see cref="UploadSteps.PathsFor"/>).</summary>
public sealed record UploadPaths(string Folder, string Artifact, string Report, string RejectedUpload,
    string ErrorReport);

/// <summary>
/// What quantize-on-upload's steps share (the steps: <c>Runs/Steps/ValidateUploadStep.cs</c>, <c>RejectUploadStep.cs</c>,
/// <c>QuantizeStep.cs</c>): the store, the limits, result paths and the quantization defaults. An upload is hostile input: size-checked before it is read, streamed at the version
/// the upload event named (its ETag) and never held whole in memory, parsed by the hostile-input checkpoint reader,
/// its tensors checked against its own spec. A rejected file gets an error report and is moved to <c>rejected</c>;
/// nothing is retried forever (validation failures are results, not exceptions).
/// </summary>
public sealed class UploadSteps(IArtifactStore store)
{
    /// <summary>Where uploads arrive and their results go.</summary>
    internal IArtifactStore Store => store;

    public const string Uploads = "uploads", Quantized = "quantized", Rejected = "rejected";

    /// <summary>Results of names that cannot be used as folders (too long, or not addressable) go under this folder,
    /// keyed by a SHA-256 of the name; names that start with it are hashed too, so no upload can aim at them.</summary>
    public const string HashedFolder = "_hashed";

    /// <summary>Largest upload accepted (bytes).</summary>
    public long MaxUploadBytes { get; init; } = 2L << 30;

    /// <summary>Largest safetensors header accepted from an upload (the JSON is read whole before it is checked; the
    /// reference reader's 100 MB limit is more than a model of a few thousand tensors needs).</summary>
    public long MaxHeaderBytes { get; init; } = 16L << 20;

    /// <summary>The orchestration instance for an upload: the same blob version always maps to the same id.</summary>
    public static string InstanceIdFor(UploadRef upload)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{Uploads}/{upload.Name}@{upload.ETag}"));
        return "upload-" + Convert.ToHexStringLower(hash)[..32];
    }

    /// <summary>
    /// One folder per upload name, holding the upload's whole name: <c>quantized/{name}/{stem}.w{bits}.safetensors</c>
    /// and <c>quantized/{name}/{stem}.report.json</c>; a rejected upload moves to <c>rejected/{name}/{file}</c> beside
    /// <c>rejected/{name}/{file}.error.json</c>. The folder is the name itself, so two different names never share a
    /// path (<c>good.bin</c> and <c>good.safetensors</c>, or <c>X.safetensors</c> and
    /// <c>X.safetensors.error.json</c>, land in different folders); only a new version of the same name replaces its
    /// own results. A name the store cannot use as a folder goes to <c>{container}/_hashed/{sha256}/</c>.
    /// </summary>
    public static UploadPaths PathsFor(string name, int bits)
    {
        string folder = name, file = LastSegment(name);
        if (!name.StartsWith(HashedFolder + "/", StringComparison.Ordinal))
        {
            var paths = Paths(folder, file, bits);
            if (new[] { paths.Artifact, paths.Report, paths.RejectedUpload, paths.ErrorReport }.All(ArtifactPath.IsValid))
                return paths;
        }
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)));
        return Paths($"{HashedFolder}/{hash}", "upload", bits);
    }

    private static UploadPaths Paths(string folder, string file, int bits)
    {
        string stem = Path.GetFileNameWithoutExtension(file);
        if (stem.Length == 0) stem = file;
        return new UploadPaths(folder, $"{Quantized}/{folder}/{stem}.w{bits}.safetensors",
            $"{Quantized}/{folder}/{stem}.report.json", $"{Rejected}/{folder}/{file}",
            $"{Rejected}/{folder}/{file}.error.json");
    }

    private static string LastSegment(string name)
    {
        int slash = name.LastIndexOf('/');
        return slash < 0 ? name : name[(slash + 1)..];
    }

    internal static UploadValidation Invalid(string error) => new(false, error, null, 0, null);

    internal static string NameProblem(string path)
    {
        try
        {
            ArtifactPath.Validate(path);
            return "unknown";
        }
        catch (InvalidSpecException e)
        {
            return e.Message;
        }
    }

    /// <summary>The upload's info, if it is still the version the upload event named.</summary>
    /// <exception cref="ArtifactNotFoundException">The upload was deleted.</exception>
    /// <exception cref="ArtifactConflictException">The name now holds another version (that version's own event
    /// handles it).</exception>
    internal async Task<ArtifactInfo> CurrentVersionAsync(UploadRef upload, CancellationToken cancellationToken)
    {
        string path = PathOf(Uploads, upload.Name);
        var info = await store.GetInfoAsync(path, cancellationToken)
                   ?? throw new ArtifactNotFoundException(path);
        if (!SameVersion(info.ETag, upload.ETag))
            throw new ArtifactConflictException(path,
                $"was replaced after the upload event (ETag {upload.ETag}, now {info.ETag}); the new version is " +
                "handled on its own");
        return info;
    }

    internal static bool SameVersion(string a, string b) => Unquoted(a) == Unquoted(b);

    private static string Unquoted(string eTag) => eTag.StartsWith("W/", StringComparison.Ordinal)
        ? eTag[2..].Trim('"')
        : eTag.Trim('"');

    /// <summary>How uploads are quantized unless the upload's metadata says otherwise (<c>method</c>, <c>bits</c>,
    /// <c>groupSize</c>, <c>calibration</c>).</summary>
    public QuantizationOptions Quantization { get; init; } = new() { CalibrationSamples = 256 };

    /// <summary>Test images the report's before/after accuracy is measured on (0: not measured).</summary>
    public int EvaluationSamples { get; init; } = 2000;

    /// <summary>Folder of the calibration datasets (null: their default folders).</summary>
    public string? DataDirectory { get; init; }

    /// <summary>The architecture spec from the checkpoint's header alone (no tensor is read); the stream is left where
    /// it was.</summary>
    internal (ArchitectureSpec Spec, IReadOnlyDictionary<string, string> Header) ReadSpec(Stream stream, string path)
    {
        var header = CheckpointCodec.ReadMetadata(stream, path,
            new SafeTensorsReadOptions { MaxHeaderBytes = MaxHeaderBytes });
        if (!header.TryGetValue(CheckpointMetadata.SpecKey, out var json))
            throw new CheckpointFormatException($"{path}: __metadata__ has no '{CheckpointMetadata.SpecKey}'");
        try
        {
            return (ArchitectureSpec.FromJson(json, path), header);
        }
        catch (InvalidSpecException e)
        {
            throw new CheckpointFormatException($"{path}: {e.Message}");
        }
    }

    /// <summary>
    /// The upload's <c>export</c> metadata: <c>onnx</c> writes the quantized model as ONNX beside the quantized
    /// checkpoint (<c>quantized/{name}/{stem}.w{bits}.onnx</c>), with the opset in <c>exportOpset</c> (default 21);
    /// absent: no export. Anything else is refused when the upload is validated.
    /// </summary>
    internal static OnnxExportOptions? ExportFor(IReadOnlyDictionary<string, string> meta, string path)
    {
        if (!meta.TryGetValue("export", out var format)) return null;
        if (format != "onnx") throw new InvalidSpecException($"{path}: metadata export='{format}' must be 'onnx'");
        var options = new OnnxExportOptions();
        if (meta.TryGetValue("exportOpset", out var opset))
            options = options with
            {
                Opset = int.TryParse(opset, out var o)
                    ? o
                    : throw new InvalidSpecException($"{path}: metadata exportOpset='{opset}' is not an integer"),
            };
        try
        {
            options.Validate();
        }
        catch (InvalidSpecException e)
        {
            throw new InvalidSpecException($"{path}: metadata exportOpset: {e.Message}");
        }
        return options;
    }

    /// <summary><c>….w4.safetensors</c> → <c>….w4.onnx</c>.</summary>
    public static string OnnxPathFor(string artifact) =>
        (artifact.EndsWith(".safetensors", StringComparison.Ordinal) ? artifact[..^".safetensors".Length] : artifact) +
        ".onnx";

    /// <summary>The service's quantization options with the upload's metadata overrides, validated.</summary>
    internal QuantizationOptions OptionsFor(IReadOnlyDictionary<string, string> meta, string path)
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
    internal DataSplits? CalibrationData(ArchitectureSpec spec, InputNormalization? recorded, string? named,
        List<string> notes)
    {
        if (ModelFamilies.For(spec) is { IsLanguageModel: false } family && family.ReadsText(spec))
        {
            notes.Add("text model: no calibration images, round-to-nearest");
            return null;
        }
        string name = named ?? recorded?.Dataset ?? (ModelFamilies.For(spec).InputShape(spec) is [3, _, _]
            ? DatasetSpec.Cifar10
            : DatasetSpec.FashionMnist);
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

    internal static string PathOf(string container, string name) => $"{container}/{name}";

    /// <summary>A name safe for any store: letters, digits, '.', '-', '_'; everything else becomes '_'.</summary>
    public static string SafeName(string name)
    {
        var s = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_').ToArray());
        s = s.Trim('.');
        if (s.Length == 0) s = "upload";
        return s.Length > 200 ? s[..200] : s;
    }

    internal static byte[] Json(JsonObject o) =>
        JsonSerializer.SerializeToUtf8Bytes(o, RunJournal.Indented);
}
