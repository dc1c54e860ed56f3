using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;

namespace ScaleGrow.Tests.Orchestration;

public class ActivityTableTests
{
    /// <summary>A throw-away activity, written as a new step would be: its records and its work in one place.</summary>
    public sealed record SeedOfRunInput(string RunId);

    public sealed class SeedOfRunStep(RunSteps run) : RunStep<SeedOfRunInput, long>(run)
    {
        public const string Name = "SeedOfRun";

        public override async Task<long> RunAsync(SeedOfRunInput input, CancellationToken cancellationToken = default) =>
            (await Run.ReadSpecAsync(input.RunId, cancellationToken)).Seed;
    }

    [Fact]
    public async Task ANewActivityIsOneStepAndOneTableLineAndRunsOnTheInProcessEngine()
    {
        var dir = Directory.CreateTempSubdirectory("sg-table-");
        try
        {
            var store = new LocalFolderArtifactStore(dir.FullName);
            var steps = new RunSteps(store);
            await RunSteps.SubmitAsync(store, "seeded", OrchestrationTestKit.TinyGrowth() with { Seed = 4242 });
            var table = ActivityTable.For(steps);
            table.Add<SeedOfRunInput, long>(SeedOfRunStep.Name, new SeedOfRunStep(steps).RunAsync);
            await using var host = await DurableTaskTestHost.StartAsync(r =>
            {
                ScaleGrowTasks.Register(r, table);
                r.AddOrchestratorFunc<string, long>("AskSeed",
                    (context, runId) => context.CallActivityAsync<long>(SeedOfRunStep.Name, new SeedOfRunInput(runId)));
            });
            string id = await host.Client.ScheduleNewOrchestrationInstanceAsync("AskSeed", "seeded");
            var done = await host.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true,
                new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
            Assert.Equal(4242, done.ReadOutputAs<long>());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task ANameIsInTheTableOnceAndAMistypedCallNamesBothSignatures()
    {
        var table = ActivityTable.For(new RunSteps(new LocalFolderArtifactStore(Path.GetTempPath())));
        var e = Assert.Throws<InvalidOperationException>(() =>
            table.Add<FuseInput, FuseResult>(FuseStep.Name, (_, _) => Task.FromResult<FuseResult>(null!)));
        Assert.Equal("activity 'Fuse' is already in the table", e.Message);
        var mistyped = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            table.RunAsync<EvaluateInput, FuseResult>(FuseStep.Name, new EvaluateInput("r", "m", false)));
        Assert.Equal("activity 'Fuse' takes FuseInput and returns FuseResult, not EvaluateInput and FuseResult",
            mistyped.Message);
        await Assert.ThrowsAsync<InvalidOperationException>(() => table.RunAsync<FuseInput, FuseResult>("Fusee", null!));
    }

    [Fact]
    public async Task AWrappedActivityRunsTheWrapperAroundTheStepItReplaces()
    {
        var table = new ActivityTable()
            .Add<int, int>("Double", (x, _) => Task.FromResult(2 * x))
            .Wrap<int, int>("Double", async (x, inner) => await inner(x) + 1);
        Assert.Equal(7, await table.RunAsync<int, int>("Double", 3));
    }
}
