using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using ScaleGrow.Runs;

namespace ScaleGrow.Orchestration;

/// <summary>
/// Starts quantize-on-upload for one uploaded blob version, at most once: the instance id is derived from the blob's
/// name and ETag (<see cref="UploadSteps.InstanceIdFor"/>), so a trigger that fires twice, or races itself, starts
/// one orchestration. Used by the blob trigger and by <c>scalegrow quantize-upload</c>.
/// </summary>
public static class UploadsService
{
    /// <summary>Returns the instance id and whether this call started it.</summary>
    public static async Task<(string InstanceId, bool Started)> StartOnceAsync(DurableTaskClient client,
        UploadRef upload, CancellationToken cancellationToken = default)
    {
        string instanceId = UploadSteps.InstanceIdFor(upload);
        if (await client.GetInstanceAsync(instanceId, cancellationToken) is not null) return (instanceId, false);
        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(TaskNames.QuantizeUpload, upload,
                new StartOrchestrationOptions(instanceId), cancellationToken);
            return (instanceId, true);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Two deliveries raced and the other one started it; anything else is a real failure.
            if (await client.GetInstanceAsync(instanceId, cancellationToken) is null) throw;
            return (instanceId, false);
        }
    }
}
