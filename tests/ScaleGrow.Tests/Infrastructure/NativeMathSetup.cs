using System.Runtime.CompilerServices;

namespace ScaleGrow.Tests.Infrastructure;

/// <summary>Tests may build tensors before touching any core type; configure libtorch's CPU math first, as every host does.</summary>
internal static class NativeMathSetup
{
    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "Runs before the first test builds a tensor.")]
    internal static void Configure() => NativeMath.Configure();
}
