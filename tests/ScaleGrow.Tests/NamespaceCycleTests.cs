using System.Text.RegularExpressions;
using ScaleGrow.Tests.Infrastructure;

namespace ScaleGrow.Tests;

/// <summary>
/// Core's folders depend on each other in one direction (docs/architecture.md "Who may depend on whom"): a pair of
/// namespaces that use each other is a cycle, and a new one fails here with the files that close it.
/// </summary>
public class NamespaceCycleTests
{
    /// <summary>Cycles known and not yet removed, as "A<->B": none (keep it that way).</summary>
    private static readonly HashSet<string> Known = [];

    [Fact]
    public void NoTwoTopLevelNamespacesOfCoreUseEachOther()
    {
        var root = Path.Combine(RepositoryRoot.Find(), "core", "ScaleGrow.Core");
        var sources = Directory.GetFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"))
            .Select(f => (File: Path.GetRelativePath(root, f), Text: File.ReadAllText(f)))
            .Select(f => (f.File, Namespace: Regex.Match(f.Text, @"^namespace ScaleGrow\.(\w+)", RegexOptions.Multiline)
                .Groups[1].Value, Code: Regex.Replace(f.Text, "//.*", "")))
            .Where(f => f.Namespace.Length > 0)
            .ToList();
        var names = sources.Select(s => s.Namespace).ToHashSet();
        var uses = new Dictionary<(string From, string To), string>();
        var reference = new Regex(@"using (?:static )?ScaleGrow\.(\w+)|ScaleGrow\.(\w+)\.|(?<![\w.])(" +
                                  string.Join('|', names) + @")\.[A-Z]");
        foreach (var (file, ns, code) in sources)
            foreach (Match m in reference.Matches(code))
            {
                string to = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Success ? m.Groups[2].Value
                    : m.Groups[3].Value;
                if (to != ns && names.Contains(to)) uses.TryAdd((ns, to), file);
            }
        var cycles = uses.Keys.Where(k => string.CompareOrdinal(k.From, k.To) < 0 && uses.ContainsKey((k.To, k.From)))
            .Select(k => (Name: $"{k.From}<->{k.To}", Files: $"{uses[k]} / {uses[(k.To, k.From)]}"))
            .ToList();
        Assert.Empty(cycles.Where(c => !Known.Contains(c.Name)).Select(c => $"{c.Name}: {c.Files}"));
        // A known cycle that is gone leaves the list, so it cannot come back unnoticed.
        Assert.Equal(Known.Order(), cycles.Select(c => c.Name).Where(Known.Contains).Order());
    }
}
