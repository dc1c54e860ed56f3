using Microsoft.DurableTask;
using ScaleGrow.Runs;
using ScaleGrow.Storage;

namespace ScaleGrow.Orchestration;

/// <summary>
/// Quantize-on-upload: validate the uploaded file (hostile input), reject it with an error report, or quantize it and
/// write the result with a report. Every upload ends in <c>quantized/</c> or in <c>rejected/</c> with a report:
/// validation failures are results; a step that throws is retried a bounded number of times when the failure may be
/// transient, and an upload that still cannot be validated or quantized is rejected with what went wrong. Only a
/// failure to write the rejection itself (storage down) fails the orchestration.
/// </summary>
public static class QuantizeUploadOrchestration
{
    public static async Task<UploadOutcome> RunAsync(TaskOrchestrationContext context, UploadRef upload)
    {
        context.SetCustomStatus(new { phase = "validate", upload.Name });
        UploadValidation validation;
        try
        {
            validation = await context.CallActivityAsync<UploadValidation>(ValidateUploadStep.Name, upload, Retry);
        }
        catch (TaskFailedException e)
        {
            validation = new UploadValidation(false, Describe("could not be validated", e), null, 0, null);
        }
        if (!validation.Valid)
            return await RejectAsync(context, upload, validation.Error ?? "invalid upload");
        context.SetCustomStatus(new { phase = "quantize", upload.Name, validation.Arch });
        try
        {
            return await context.CallActivityAsync<UploadOutcome>(QuantizeStep.Name, upload, Retry);
        }
        catch (TaskFailedException e)
        {
            return await RejectAsync(context, upload, Describe("could not be quantized", e));
        }
    }

    private static Task<UploadOutcome> RejectAsync(TaskOrchestrationContext context, UploadRef upload, string error)
    {
        context.SetCustomStatus(new { phase = "rejected", upload.Name, Error = error });
        return context.CallActivityAsync<UploadOutcome>(RejectUploadStep.Name, new RejectUploadInput(upload, error),
            Retry);
    }

    /// <summary>A bad file's own message stands alone; anything else says which step failed and how.</summary>
    private static string Describe(string what, TaskFailedException e)
    {
        var failure = e.FailureDetails;
        string message = failure.ErrorMessage.ReplaceLineEndings(" ");
        return failure.IsCausedBy<ScaleGrowException>() && !failure.IsCausedBy<ArtifactStoreUnavailableException>()
            ? message
            : $"{what}: {failure.ErrorType}: {message}";
    }

    /// <summary>Retries what may pass on its own (storage unavailable, anything not a ScaleGrowException) up to four
    /// attempts; a ScaleGrowException about the file or its options is final.</summary>
    public static readonly TaskOptions Retry = TaskOptions.FromRetryPolicy(
        new RetryPolicy(maxNumberOfAttempts: 4, firstRetryInterval: TimeSpan.FromSeconds(1), backoffCoefficient: 2,
            maxRetryInterval: TimeSpan.FromSeconds(30))
        {
            HandleFailure = failure => failure.IsCausedBy<ArtifactStoreUnavailableException>() ||
                                       GrowthOrchestration.ShouldRetry(failure),
        });
}
