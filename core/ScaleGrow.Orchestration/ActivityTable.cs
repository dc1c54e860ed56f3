using ScaleGrow.Growth;
using ScaleGrow.Runs;
using ScaleGrow.Sweeps;

namespace ScaleGrow.Orchestration;

/// <summary>
/// Every activity the orchestrations call, by name, with its input and result types and its work: one table for
/// every host (the CLI's in-process and Azure Storage engines and its direct runner through
/// <see cref="ScaleGrowTasks"/>, the Functions app's bindings through <see cref="RunAsync{TInput, TResult}"/>).
/// A new activity is a step file in <c>core/ScaleGrow.Core/Runs/Steps/</c> plus one line in <see cref="For"/>; a test
/// fails when the Functions bindings and this table differ. Names are unique: adding one twice throws.
/// </summary>
public sealed class ActivityTable
{
    private readonly Dictionary<string, ActivityDefinition> _activities = new(StringComparer.Ordinal);

    /// <summary>The activities of growth, training and scale runs, and of uploads and sweeps when given.</summary>
    public static ActivityTable For(RunSteps steps, UploadSteps? uploads = null, SweepSteps? sweeps = null)
    {
        var table = new ActivityTable();
        table.Add<InitializeRunInput, InitializeRunResult>(InitializeRunStep.Name, new InitializeRunStep(steps).RunAsync);
        table.Add<TrainIntervalInput, TrainIntervalResult>(TrainIntervalStep.Name, new TrainIntervalStep(steps).RunAsync);
        table.Add<ScoreImportanceInput, ImportanceReport>(ScoreImportanceStep.Name,
            new ScoreImportanceStep(steps).RunAsync);
        table.Add<InsertModuleInput, InsertModuleResult>(InsertModuleStep.Name, new InsertModuleStep(steps).RunAsync);
        table.Add<MigrateOptimizerInput, RunCheckpoint>(MigrateOptimizerStep.Name,
            new MigrateOptimizerStep(steps).RunAsync);
        table.Add<MergeBranchesInput, MergeBranchesResult>(MergeBranchesStep.Name,
            new MergeBranchesStep(steps).RunAsync);
        table.Add<GrowthRunState, bool>(RecordProgressStep.Name, new RecordProgressStep(steps).RunAsync);
        table.Add<FuseInput, FuseResult>(FuseStep.Name, new FuseStep(steps).RunAsync);
        table.Add<EvaluateInput, EvaluationResult>(EvaluateStep.Name, new EvaluateStep(steps).RunAsync);
        table.Add<ExpandInput, ExpandResult>(ExpandStep.Name, new ExpandStep(steps).RunAsync);
        table.Add<QuantizeModelInput, QuantizeModelResult>(QuantizeModelStep.Name, new QuantizeModelStep(steps).RunAsync);
        table.Add<ExportModelInput, ExportModelResult>(ExportModelStep.Name, new ExportModelStep(steps).RunAsync);
        table.Add<FinalizeInput, RunSummary>(FinalizeStep.Name, new FinalizeStep(steps).RunAsync);
        if (uploads is not null)
        {
            table.Add<UploadRef, UploadValidation>(ValidateUploadStep.Name, new ValidateUploadStep(uploads).RunAsync);
            table.Add<RejectUploadInput, UploadOutcome>(RejectUploadStep.Name, new RejectUploadStep(uploads).RunAsync);
            table.Add<UploadRef, UploadOutcome>(QuantizeStep.Name, new QuantizeStep(uploads).RunAsync);
        }
        if (sweeps is not null)
        {
            table.Add<PlanSweepInput, SweepPlan>(PlanSweepStep.Name, new PlanSweepStep(sweeps).RunAsync);
            table.Add<PrepareTrialInput, PrepareTrialResult>(PrepareTrialStep.Name, new PrepareTrialStep(sweeps).RunAsync);
            table.Add<RecordTrialInput, RecordTrialResult>(RecordTrialStep.Name, new RecordTrialStep(sweeps).RunAsync);
            table.Add<StopTrialsInput, bool>(StopTrialsStep.Name, new StopTrialsStep(sweeps).RunAsync);
            table.Add<FinishSweepInput, SweepSummary>(FinishSweepStep.Name, new FinishSweepStep(sweeps).RunAsync);
        }
        return table;
    }

    /// <summary>The activities, in the order they were added.</summary>
    public IReadOnlyCollection<ActivityDefinition> Activities => _activities.Values;

    public bool Contains(string name) => _activities.ContainsKey(name);

    /// <summary>Adds an activity; a name already in the table is an error (two steps must never share a name).</summary>
    public ActivityTable Add<TInput, TResult>(string name, Func<TInput, CancellationToken, Task<TResult>> run)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (!_activities.TryAdd(name, new ActivityDefinition<TInput, TResult>(name, run)))
            throw new InvalidOperationException($"activity '{name}' is already in the table");
        return this;
    }

    /// <summary>
    /// Wraps an activity already in the table: <paramref name="wrap"/> receives each input and the activity as it
    /// was, and decides what to return (tests inject faults or measure a step this way, on the real engine).
    /// </summary>
    public ActivityTable Wrap<TInput, TResult>(string name,
        Func<TInput, Func<TInput, Task<TResult>>, Task<TResult>> wrap)
    {
        var inner = Definition<TInput, TResult>(name);
        _activities[name] = new ActivityDefinition<TInput, TResult>(name,
            (input, ct) => wrap(input, i => inner.Run(i, ct)));
        return this;
    }

    /// <summary>Runs the named activity (the Functions bindings call this; the type arguments must match the table).</summary>
    public Task<TResult> RunAsync<TInput, TResult>(string name, TInput input,
        CancellationToken cancellationToken = default) =>
        Definition<TInput, TResult>(name).Run(input, cancellationToken);

    /// <summary>Hands every activity to a host (a Durable Task registry or the direct runner).</summary>
    public void AddTo(IActivitySink sink)
    {
        foreach (var activity in _activities.Values) activity.AddTo(sink);
    }

    private ActivityDefinition<TInput, TResult> Definition<TInput, TResult>(string name)
    {
        if (!_activities.TryGetValue(name, out var found))
            throw new InvalidOperationException($"no activity named '{name}' in the table");
        return found as ActivityDefinition<TInput, TResult> ?? throw new InvalidOperationException(
            $"activity '{name}' takes {found.Input.Name} and returns {found.Result.Name}, " +
            $"not {typeof(TInput).Name} and {typeof(TResult).Name}");
    }
}

/// <summary>One row of the <see cref="ActivityTable"/>: an activity's name and the types it takes and returns.</summary>
public abstract record ActivityDefinition(string Name, Type Input, Type Result)
{
    internal abstract void AddTo(IActivitySink sink);
}

internal sealed record ActivityDefinition<TInput, TResult>(string Name,
    Func<TInput, CancellationToken, Task<TResult>> Run) : ActivityDefinition(Name, typeof(TInput), typeof(TResult))
{
    internal override void AddTo(IActivitySink sink) => sink.Add<TInput, TResult>(Name, input => Run(input, default));
}

/// <summary>Receives activity definitions (name, typed function).</summary>
public interface IActivitySink
{
    void Add<TInput, TOutput>(string name, Func<TInput, Task<TOutput>> activity);
}
