using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using ScaleGrow.Storage;

namespace ScaleGrow.Runs;

public sealed record UploadValidation(bool Valid, string? Error, string? Arch, long Parameters, string? Calibration);

/// <summary>The <c>ValidateUpload</c> activity: size, name and version checks, then the hostile-input checkpoint reader over the streamed upload and its quantization and export metadata. A bad upload is a result (<see cref="UploadValidation.Valid"/> false, with the one-line reason), not an exception.</summary>
public sealed class ValidateUploadStep(UploadSteps uploads)
{
    /// <summary>The activity's name, as the quantize-on-upload orchestration calls it.</summary>
    public const string Name = "ValidateUpload";

    private UploadSteps Context { get; } = uploads;

    public async Task<UploadValidation> RunAsync(UploadRef upload, CancellationToken cancellationToken = default)
    {
        string path = UploadSteps.PathOf(UploadSteps.Uploads, upload.Name);
        if (!ArtifactPath.IsValid(path))
            return UploadSteps.Invalid($"upload name '{ArtifactPath.Printable(upload.Name)}' cannot be stored: " +
                           UploadSteps.NameProblem(path));
        try
        {
            var info = await Context.CurrentVersionAsync(upload, cancellationToken);
            if (info.Length > Context.MaxUploadBytes)
                return UploadSteps.Invalid($"{path}: {info.Length} bytes is over the {Context.MaxUploadBytes}-byte limit");
            await using var stream = await Context.Store.OpenVersionAsync(path, info.ETag, cancellationToken);
            var limits = new SafeTensorsReadOptions { MaxHeaderBytes = Context.MaxHeaderBytes };
            if (CheckpointCodec.ReadKind(stream, path, limits) is { } kind && kind != CheckpointMetadata.ModelKind)
                return UploadSteps.Invalid($"{path}: already a {kind}; upload a float checkpoint");
            var (model, _) = ModelIO.LoadModel(stream, path);
            using (model.Module)
            {
                info.Metadata.TryGetValue("calibration", out var calibration);
                Context.OptionsFor(info.Metadata, path);
                UploadSteps.ExportFor(info.Metadata, path);
                return new UploadValidation(true, null, model.Spec.ArchString, ModelStats.Of(model.Spec).Parameters,
                    calibration);
            }
        }
        catch (ScaleGrowException e) when (e is not ArtifactStoreUnavailableException)
        {
            return UploadSteps.Invalid(e.Message.ReplaceLineEndings(" "));
        }
    }
}
