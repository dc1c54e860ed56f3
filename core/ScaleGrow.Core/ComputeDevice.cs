using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow;

/// <summary>
/// Where a step computes: a TorchSharp device and the floating-point type parameters live in there. A run chooses
/// its device once (<c>device</c> in the run spec: <c>auto</c>, <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>), and every
/// step resolves that choice on the machine it runs on, so a run can start on a GPU replica and resume on a CPU one.
/// Models are placed when they are loaded or built; everything else follows the model (<see cref="Of"/>): batches,
/// calibration inputs, optimizer moments and new tensors go where the model's parameters are. Checkpoints are always
/// written from CPU float32 copies, so they load anywhere.
/// </summary>
/// <remarks>
/// <see cref="FloatType"/> is float32 for every run. A second floating type exists for one reason: this machine has
/// no GPU, and on a single CPU device a forgotten placement changes nothing. Placing the model in float64 instead
/// makes every tensor that missed its placement (a batch, a calibration input, a moment, a factory without a device)
/// a float32 tensor meeting float64 parameters, which convolutions, linear layers, batch norms and in-place updates
/// refuse. The device-audit tests run every step that way (tests/…/Runs/DeviceAuditTests.cs).
/// </remarks>
public sealed record ComputeDevice
{
    private ComputeDevice(Device device, ScalarType floatType, string name)
    {
        Device = device;
        FloatType = floatType;
        Name = name;
    }

    public Device Device { get; }

    /// <summary>The floating type of parameters, batches and moments on this device (float32 outside tests).</summary>
    public ScalarType FloatType { get; }

    /// <summary>What the run status and report show: <c>cpu</c> or <c>cuda:0 (NVIDIA A100 80GB PCIe)</c>.</summary>
    public string Name { get; }

    public bool IsCuda => Device.type == DeviceType.CUDA;

    public static ComputeDevice Cpu { get; } = new(torch.CPU, ScalarType.Float32, "cpu");

    /// <summary>The CPU with parameters in float64: the device audit's stand-in for "not the default device".</summary>
    internal static ComputeDevice CpuFloat64 { get; } = new(torch.CPU, ScalarType.Float64, "cpu (float64 audit)");

    /// <summary>The accepted spellings of a device choice, for error messages.</summary>
    public const string Choices = "auto, cpu, cuda or cuda:N";

    /// <summary>Checks a device choice's spelling without touching any device (run-spec validation).</summary>
    public static void ValidateChoice(string? choice, string field = "device")
    {
        if (Parse(choice) is null)
            throw new InvalidSpecException($"{field}: '{choice}' is not a device; use {Choices}");
    }

    /// <summary>
    /// Resolves a device choice on this machine. <c>auto</c> takes CUDA device 0 when TorchSharp reports one, else
    /// the CPU; an explicit CUDA choice on a machine without it is an error that says what this build has.
    /// </summary>
    public static ComputeDevice Resolve(string? choice, string field = "device")
    {
        var parsed = Parse(choice)
                     ?? throw new InvalidSpecException($"{field}: '{choice}' is not a device; use {Choices}");
        if (parsed.Type == DeviceType.CPU) return Cpu;
        bool available = CudaAvailable();
        if (parsed.Index is null) // auto
            return available ? Cuda(0) : Cpu;
        if (!available)
            throw new InvalidSpecException(
                $"{field}: '{choice}' asked for, but TorchSharp reports no CUDA device on this machine " +
                "(a TorchSharp-cpu build, or no GPU visible); use device 'auto' or 'cpu' here");
        int count = torch.cuda.device_count();
        int index = parsed.Index.Value;
        if (index >= count)
            throw new InvalidSpecException(
                $"{field}: '{choice}' asked for, but this machine has {count} CUDA device(s) (cuda:0 … cuda:{count - 1})");
        return Cuda(index);
    }

    /// <summary>Where <paramref name="module"/>'s parameters are (the CPU in float32 for a module without any).</summary>
    public static ComputeDevice Of(nn.Module module)
    {
        foreach (var p in module.parameters())
        {
            if (!p.is_floating_point()) continue;
            return Of(p);
        }
        return Cpu;
    }

    /// <summary>Where <paramref name="tensor"/> is, as a compute device (its floating type if it has one).</summary>
    public static ComputeDevice Of(Tensor tensor)
    {
        var type = tensor.is_floating_point() ? tensor.dtype : ScalarType.Float32;
        if (tensor.device_type == DeviceType.CPU)
            return type == ScalarType.Float64 ? CpuFloat64 : Cpu;
        var cuda = Cuda(tensor.device_index);
        return type == cuda.FloatType ? cuda : new ComputeDevice(cuda.Device, type, cuda.Name);
    }

    /// <summary>Moves a model (parameters and buffers) here, in place; returns it.</summary>
    public T Place<T>(T module) where T : nn.Module
    {
        if (Device.type != DeviceType.CPU) module.to(Device);
        if (FloatType != ScalarType.Float32) module.to(FloatType);
        return module;
    }

    /// <summary>
    /// A batch's input, here: floating inputs in <see cref="FloatType"/>, token ids unchanged in type. Copies to a GPU
    /// are asynchronous (the host tensor is pinned first), so the next batch can be prepared while this one computes.
    /// </summary>
    public Tensor Input(Tensor x)
    {
        if (x.is_floating_point() && x.dtype != FloatType)
            x = x.to(FloatType);
        return Move(x);
    }

    /// <summary>Labels or targets (integer tensors), here.</summary>
    public Tensor Target(Tensor y) => Move(y);

    private Tensor Move(Tensor t)
    {
        if (t.device_type == Device.type && (Device.type == DeviceType.CPU || t.device_index == Device.index))
            return t;
        if (IsCuda && t.device_type == DeviceType.CPU)
            return t.pin_memory().to(Device, non_blocking: true);
        return t.to(Device);
    }

    /// <summary>Waits for the device's queued work (a no-op on the CPU); for wall-clock latency.</summary>
    public void Synchronize()
    {
        if (IsCuda) torch.cuda.synchronize(Device);
    }

    public override string ToString() => Name;

    /// <summary>
    /// Sets libtorch's intra-op thread count for this process: <paramref name="requested"/>, else the
    /// <c>SCALEGROW_THREADS</c> environment variable, else <see cref="Environment.ProcessorCount"/> (which follows a
    /// container's CPU limit, where libtorch's own default counts the host's cores). Returns the count set. Results
    /// are deterministic for a seed and a thread count; a different count can change the last bits.
    /// </summary>
    public static int ConfigureThreads(int? requested = null)
    {
        int threads = requested ?? ThreadsFromEnvironment() ?? Environment.ProcessorCount;
        if (threads is < 1 or > 1024)
            throw new InvalidSpecException($"threads: must be in 1..1024, got {threads}");
        if (torch.get_num_threads() != threads) torch.set_num_threads(threads);
        return threads;
    }

    private static int? ThreadsFromEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable("SCALEGROW_THREADS");
        if (string.IsNullOrWhiteSpace(value)) return null;
        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            ? n
            : throw new InvalidSpecException($"SCALEGROW_THREADS: '{value}' is not a thread count (1..1024)");
    }

    private static bool CudaAvailable()
    {
        try
        {
            return torch.cuda.is_available();
        }
        catch (Exception e) when (e is InvalidOperationException or DllNotFoundException or EntryPointNotFoundException)
        {
            return false; // a CPU build whose CUDA probe cannot even load
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, ComputeDevice> CudaDevices = new();

    /// <summary>CUDA device <paramref name="index"/>, named once per process (the name costs an nvidia-smi call).</summary>
    private static ComputeDevice Cuda(int index) => CudaDevices.GetOrAdd(index, i =>
        new ComputeDevice(torch.device(DeviceType.CUDA, i), ScalarType.Float32, $"cuda:{i} ({GpuName(i)})"));

    /// <summary>The GPU's product name from nvidia-smi (TorchSharp does not expose it), or "CUDA device N".</summary>
    private static string GpuName(int index)
    {
        try
        {
            var info = new ProcessStartInfo("nvidia-smi",
                $"--query-gpu=name --format=csv,noheader -i {index.ToString(CultureInfo.InvariantCulture)}")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            using var process = Process.Start(info);
            if (process is null) return $"CUDA device {index}";
            string name = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit(5000);
            return process.ExitCode == 0 && name.Length > 0 ? name : $"CUDA device {index}";
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return $"CUDA device {index}";
        }
    }

    /// <summary>(CPU, null) for cpu; (CUDA, null) for auto; (CUDA, N) for cuda and cuda:N; null for anything else.</summary>
    private static (DeviceType Type, int? Index)? Parse(string? choice)
    {
        string c = (choice ?? "auto").Trim().ToLowerInvariant();
        if (c is "auto") return (DeviceType.CUDA, null);
        if (c is "cpu") return (DeviceType.CPU, null);
        if (c is "cuda") return (DeviceType.CUDA, 0);
        if (c.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(c.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n < 64)
            return (DeviceType.CUDA, n);
        return null;
    }
}
