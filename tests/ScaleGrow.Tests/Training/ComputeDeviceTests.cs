using ScaleGrow.Cli;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Training;

/// <summary>Device choices, placement and threads (issue 17). This machine's build is TorchSharp-cpu.</summary>
public class ComputeDeviceTests
{
    [Theory]
    [InlineData("auto")]
    [InlineData("cpu")]
    [InlineData(" CPU ")]
    [InlineData("cuda")]
    [InlineData("cuda:0")]
    [InlineData("cuda:7")]
    [InlineData(null)]
    public void EveryDocumentedSpellingIsAValidChoice(string? choice) => ComputeDevice.ValidateChoice(choice);

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:1:2")]
    [InlineData("")]
    public void AnythingElseIsRefusedNamingTheChoices(string choice)
    {
        var e = Assert.Throws<InvalidSpecException>(() => ComputeDevice.ValidateChoice(choice));
        Assert.Contains("auto, cpu, cuda or cuda:N", e.Message);
    }

    [Fact]
    public void AutoTakesTheCpuOnAMachineWithoutCudaAndAnExplicitCudaChoiceSaysWhatIsMissing()
    {
        Assert.False(torch.cuda.is_available()); // this machine, and CI's, have the CPU build
        Assert.Same(ComputeDevice.Cpu, ComputeDevice.Resolve("auto"));
        Assert.Same(ComputeDevice.Cpu, ComputeDevice.Resolve("cpu"));
        var e = Assert.Throws<InvalidSpecException>(() => ComputeDevice.Resolve("cuda:1"));
        Assert.Contains("device: 'cuda:1' asked for, but TorchSharp reports no CUDA device", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void PlacingOnTheCpuInFloat32ChangesNothingAndBatchesAlreadyThereAreNotCopied()
    {
        using var model = new CnnModel(CnnSpecs.Seed(CnnFamily.Vgg, 10, 1, 28, [8, 12, 16]));
        var before = model.parameters().Select(p => p.Handle).ToList();
        ComputeDevice.Cpu.Place(model);
        Assert.Equal(before, model.parameters().Select(p => p.Handle).ToList());
        using var x = torch.rand(2, 1, 28, 28);
        Assert.Same(x, ComputeDevice.Cpu.Input(x)); // the bit-identical path: no cast, no copy
        using var y = torch.tensor(new long[] { 1, 2 });
        Assert.Same(y, ComputeDevice.Cpu.Target(y));
        Assert.Equal("cpu", ComputeDevice.Of(model).Name);
    }

    [Fact]
    public void InputsTakeTheDevicesFloatTypeAndTokenIdsKeepTheirs()
    {
        using var x = torch.rand(2, 3);
        using var ids = torch.tensor(new long[] { 4, 5 });
        Assert.Equal(ScalarType.Float64, ComputeDevice.CpuFloat64.Input(x).dtype);
        Assert.Equal(ScalarType.Int64, ComputeDevice.CpuFloat64.Input(ids).dtype);
        Assert.Equal(ComputeDevice.CpuFloat64, ComputeDevice.Of(torch.zeros(1, dtype: ScalarType.Float64)));
    }

    [Fact]
    public void ThreadsComeFromTheRequestElseTheMachineAndABadCountIsRefused()
    {
        int original = torch.get_num_threads();
        try
        {
            Assert.Equal(1, ComputeDevice.ConfigureThreads(1));
            Assert.Equal(1, torch.get_num_threads());
            Assert.Equal(Environment.ProcessorCount, ComputeDevice.ConfigureThreads());
            Assert.Throws<InvalidSpecException>(() => ComputeDevice.ConfigureThreads(0));
        }
        finally
        {
            torch.set_num_threads(original);
        }
    }

    [Theory]
    [InlineData(new[] { "grow", "--threads", "3", "--preset", "tiny" }, 3, "grow --preset tiny")]
    [InlineData(new[] { "--threads=1", "eval", "--model", "m" }, 1, "eval --model m")]
    [InlineData(new[] { "runs", "list" }, null, "runs list")]
    public void TheGlobalThreadsOptionIsTakenFromAnywhereOnTheCommandLine(string[] args, int? threads, string rest)
    {
        var (remaining, taken) = CommandLine.TakeThreads(args);
        Assert.Equal(threads, taken);
        Assert.Equal(rest, string.Join(' ', remaining));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("many")]
    [InlineData("2000")]
    public void ABadThreadCountIsAOneLineUsageError(string value)
    {
        var e = Assert.Throws<UsageException>(() => CommandLine.TakeThreads(["grow", "--threads", value]));
        Assert.Contains("--threads", e.Message);
    }
}
