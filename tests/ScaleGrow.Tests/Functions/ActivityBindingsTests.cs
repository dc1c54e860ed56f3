using System.Reflection;
using Microsoft.Azure.Functions.Worker;
using ScaleGrow.Functions;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;

namespace ScaleGrow.Tests.Functions;

/// <summary>
/// The Functions app binds each activity by hand (its triggers are found at build time), so these tests hold the
/// bindings to the <see cref="ActivityTable"/> every other host registers from: the same names, the same types, and
/// each binding running its own row.
/// </summary>
public class ActivityBindingsTests
{
    private static ActivityTable Table()
    {
        var store = new LocalFolderArtifactStore(Path.GetTempPath());
        return ActivityTable.For(new RunSteps(store), new UploadSteps(store), new ScaleGrow.Sweeps.SweepSteps(store));
    }

    private static IReadOnlyList<(string Name, MethodInfo Method)> Bindings() =>
        typeof(ActivityFunctions).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static))
            .Where(m => m.GetParameters().Any(p => p.GetCustomAttribute<ActivityTriggerAttribute>() is not null))
            .Select(m => (m.GetCustomAttribute<FunctionAttribute>()!.Name, m))
            .ToList();

    [Fact]
    public void EveryActivityInTheTableHasOneBindingOfItsTypesAndThereAreNoOthers()
    {
        var table = Table().Activities.ToDictionary(a => a.Name);
        var bindings = Bindings();
        Assert.Equal(table.Keys.Order(), bindings.Select(b => b.Name).Order());
        foreach (var (name, method) in bindings)
        {
            var input = method.GetParameters().Single(p => p.GetCustomAttribute<ActivityTriggerAttribute>() is not null);
            Assert.True(input.ParameterType == table[name].Input, $"{name} binds {input.ParameterType.Name}, the table takes {table[name].Input.Name}");
            Assert.True(method.ReturnType == typeof(Task<>).MakeGenericType(table[name].Result),
                $"{name} returns {method.ReturnType}, the table returns Task<{table[name].Result.Name}>");
        }
    }

    [Fact]
    public async Task EachBindingRunsItsOwnRowOfTheTable()
    {
        var table = Table();
        var called = new List<string>();
        foreach (var activity in table.Activities.ToList())
            typeof(ActivityBindingsTests).GetMethod(nameof(Record), BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(activity.Input, activity.Result).Invoke(null, [table, activity.Name, called]);
        var functions = new ActivityFunctions(table);
        foreach (var (name, method) in Bindings())
        {
            called.Clear();
            var task = (Task)method.Invoke(functions, [null])!;
            await task;
            Assert.Equal([name], called);
        }
    }

    private static void Record<TInput, TResult>(ActivityTable table, string name, List<string> called) =>
        table.Wrap<TInput, TResult>(name, (_, _) =>
        {
            called.Add(name);
            return Task.FromResult(default(TResult)!);
        });
}
