using DurableTask.Core;
using DurableTask.Core.History;

namespace ScaleGrow.Cli;

/// <summary>
/// The Azure Storage backend behind the in-process test host's gRPC sidecar, with one repair: the sidecar starts a
/// sub-orchestration with its tags still in a protobuf <c>MapField</c>, which DurableTask.AzureStorage writes into the
/// control-queue message by type name and then cannot read back (it resolves type names against its own assembly:
/// "Could not resolve type 'Google.Protobuf.Collections.MapField`2'"), so every child orchestration — each trial of
/// a sweep — was never started and its message was retried forever. Tags are copied into a plain dictionary before
/// the messages are written. Likewise the sidecar records the child's creation in the parent's history as its own
/// subclass of <c>SubOrchestrationInstanceCreatedEvent</c>, which has no data contract of its own, so the history
/// table row was written without an <c>EventType</c> and the parent could never be loaded again ("The TableEntity did
/// not contain a 'EventType' property"): it is replaced by the plain event, with the same fields. Everything else is
/// passed through.
/// </summary>
internal sealed class PlainTagsOrchestrationService(IOrchestrationService inner) : IOrchestrationService
{
    public Task CompleteTaskOrchestrationWorkItemAsync(TaskOrchestrationWorkItem workItem,
        OrchestrationRuntimeState newOrchestrationRuntimeState, IList<TaskMessage> outboundMessages,
        IList<TaskMessage> orchestratorMessages, IList<TaskMessage> timerMessages, TaskMessage continuedAsNewMessage,
        OrchestrationState orchestrationState)
    {
        foreach (var message in orchestratorMessages)
            if (message.Event is ExecutionStartedEvent { Tags: { } tags } started
                && tags.GetType() != typeof(Dictionary<string, string>))
                started.Tags = new Dictionary<string, string>(tags);
        var events = newOrchestrationRuntimeState.Events;
        var newEvents = newOrchestrationRuntimeState.NewEvents;
        for (int i = 0; i < newEvents.Count; i++)
        {
            if (newEvents[i] is not SubOrchestrationInstanceCreatedEvent created
                || created.GetType() == typeof(SubOrchestrationInstanceCreatedEvent)) continue;
            var plain = new SubOrchestrationInstanceCreatedEvent(created.EventId)
            {
                Name = created.Name, Version = created.Version, InstanceId = created.InstanceId, Input = created.Input,
                Timestamp = created.Timestamp, IsPlayed = created.IsPlayed,
            };
            newEvents[i] = plain;
            int at = events.IndexOf(created);
            if (at >= 0) events[at] = plain;
        }
        return inner.CompleteTaskOrchestrationWorkItemAsync(workItem, newOrchestrationRuntimeState, outboundMessages,
            orchestratorMessages, timerMessages, continuedAsNewMessage, orchestrationState);
    }

    private readonly Lock _gate = new();
    private Task? _started;

    public Task StartAsync()
    {
        lock (_gate) return _started ??= inner.StartAsync();
    }

    public Task StopAsync() => StopAsync(false);

    /// <summary>
    /// Stops the service only once it has started. The sidecar starts it when a worker connects and stops it when the
    /// process shuts down; a command that ends at once (`runs resume` of a run another process executes) can shut down
    /// before or while the start runs, and DurableTask.AzureStorage's StopAsync then throws a NullReferenceException on
    /// the sidecar's shutdown thread, which aborts the process (exit 134; RunsCommandTests caught it 1 time in 3).
    /// </summary>
    public async Task StopAsync(bool isForced)
    {
        Task? started;
        lock (_gate) started = _started;
        if (started is null) return; // never started: nothing to stop
        try
        {
            await started;
        }
        catch (Exception)
        {
            return; // a start that failed left nothing running; its error went to the caller that started it
        }
        await inner.StopAsync(isForced);
    }
    public Task CreateAsync() => inner.CreateAsync();
    public Task CreateAsync(bool recreateInstanceStore) => inner.CreateAsync(recreateInstanceStore);
    public Task CreateIfNotExistsAsync() => inner.CreateIfNotExistsAsync();
    public Task DeleteAsync() => inner.DeleteAsync();
    public Task DeleteAsync(bool deleteInstanceStore) => inner.DeleteAsync(deleteInstanceStore);
    public int TaskOrchestrationDispatcherCount => inner.TaskOrchestrationDispatcherCount;
    public int MaxConcurrentTaskOrchestrationWorkItems => inner.MaxConcurrentTaskOrchestrationWorkItems;
    public BehaviorOnContinueAsNew EventBehaviourForContinueAsNew => inner.EventBehaviourForContinueAsNew;
    public bool IsMaxMessageCountExceeded(int currentMessageCount, OrchestrationRuntimeState runtimeState) =>
        inner.IsMaxMessageCountExceeded(currentMessageCount, runtimeState);
    public int GetDelayInSecondsAfterOnProcessException(Exception exception) =>
        inner.GetDelayInSecondsAfterOnProcessException(exception);
    public int GetDelayInSecondsAfterOnFetchException(Exception exception) =>
        inner.GetDelayInSecondsAfterOnFetchException(exception);
    public Task<TaskOrchestrationWorkItem> LockNextTaskOrchestrationWorkItemAsync(TimeSpan receiveTimeout,
        CancellationToken cancellationToken) => inner.LockNextTaskOrchestrationWorkItemAsync(receiveTimeout, cancellationToken);
    public Task RenewTaskOrchestrationWorkItemLockAsync(TaskOrchestrationWorkItem workItem) =>
        inner.RenewTaskOrchestrationWorkItemLockAsync(workItem);
    public Task AbandonTaskOrchestrationWorkItemAsync(TaskOrchestrationWorkItem workItem) =>
        inner.AbandonTaskOrchestrationWorkItemAsync(workItem);
    public Task ReleaseTaskOrchestrationWorkItemAsync(TaskOrchestrationWorkItem workItem) =>
        inner.ReleaseTaskOrchestrationWorkItemAsync(workItem);
    public int TaskActivityDispatcherCount => inner.TaskActivityDispatcherCount;
    public int MaxConcurrentTaskActivityWorkItems => inner.MaxConcurrentTaskActivityWorkItems;
    public Task<TaskActivityWorkItem> LockNextTaskActivityWorkItem(TimeSpan receiveTimeout,
        CancellationToken cancellationToken) => inner.LockNextTaskActivityWorkItem(receiveTimeout, cancellationToken);
    public Task<TaskActivityWorkItem> RenewTaskActivityWorkItemLockAsync(TaskActivityWorkItem workItem) =>
        inner.RenewTaskActivityWorkItemLockAsync(workItem);
    public Task CompleteTaskActivityWorkItemAsync(TaskActivityWorkItem workItem, TaskMessage responseMessage) =>
        inner.CompleteTaskActivityWorkItemAsync(workItem, responseMessage);
    public Task AbandonTaskActivityWorkItemAsync(TaskActivityWorkItem workItem) =>
        inner.AbandonTaskActivityWorkItemAsync(workItem);
}
