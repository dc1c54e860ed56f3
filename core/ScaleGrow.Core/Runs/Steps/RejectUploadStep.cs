using System.Text.Json.Nodes;
using ScaleGrow.Storage;

namespace ScaleGrow.Runs;

/// <summary>An upload to reject, and why.</summary>
public sealed record RejectUploadInput(UploadRef Upload, string Error);

/// <summary>The <c>RejectUpload</c> activity (see <see cref="RunAsync"/>).</summary>
public sealed class RejectUploadStep(UploadSteps uploads)
{
    /// <summary>The activity's name, as the quantize-on-upload orchestration calls it.</summary>
    public const string Name = "RejectUpload";

    private UploadSteps Context { get; } = uploads;

    /// <summary>
    /// Writes the error report and moves the upload aside (idempotent). When the upload's name already holds another
    /// version, that version is left where it is, and this report never replaces one already written for it.
    /// </summary>
    public async Task<UploadOutcome> RunAsync(RejectUploadInput input, CancellationToken cancellationToken = default)
    {
        var (upload, error) = (input.Upload, input.Error);
        var paths = UploadSteps.PathsFor(upload.Name, Context.Quantization.Bits);
        string source = UploadSteps.PathOf(UploadSteps.Uploads, upload.Name);
        bool addressable = ArtifactPath.IsValid(source);
        var current = addressable ? await Context.Store.GetInfoAsync(source, cancellationToken) : null;
        bool ours = current is not null && UploadSteps.SameVersion(current.ETag, upload.ETag);
        var report = UploadSteps.Json(new JsonObject
        {
            ["upload"] = upload.Name, ["etag"] = upload.ETag, ["status"] = "rejected", ["error"] = error,
            ["movedTo"] = ours ? paths.RejectedUpload : null,
        });
        bool superseded = current is not null && !ours;
        try
        {
            await Context.Store.WriteAsync(paths.ErrorReport, report,
                superseded ? ArtifactWriteOptions.IfNotExists : null, cancellationToken);
        }
        catch (ArtifactConflictException) when (superseded)
        {
            // The newer version's report is already there: it is the one that matters.
        }
        if (ours)
        {
            try
            {
                await Context.Store.MoveAsync(source, paths.RejectedUpload, cancellationToken);
            }
            catch (ArtifactConflictException)
            {
                // Replaced while moving: the new version stays for its own event; the copy in rejected/ is ours.
            }
        }
        return new UploadOutcome("rejected", upload.Name, null, paths.ErrorReport, error);
    }
}
