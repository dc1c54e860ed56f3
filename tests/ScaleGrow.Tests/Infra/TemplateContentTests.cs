using System.Text.Json.Nodes;

namespace ScaleGrow.Tests.Infra;

/// <summary>
/// What the compiled deployment (infra/main.bicep as ARM JSON) promises: keyless storage with the service's
/// containers, data-plane roles for the app's user-assigned identity, a GPU workload profile whose type is the
/// parameter, the Functions app on that profile with identity-based connections, and no secret anywhere.
/// </summary>
public class TemplateContentTests : IClassFixture<CompiledInfra>
{
    private const string StorageBlobDataOwner = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b";
    private const string StorageBlobDataContributor = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
    private const string StorageQueueDataContributor = "974c5e8b-45b9-4653-ba55-5f855dd0fb88";
    private const string StorageTableDataContributor = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3";
    private const string AcrPull = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
    private const string MonitoringMetricsPublisher = "3913510d-42f4-4e42-8a64-420c390055eb";
    private const string DurableTaskDataContributor = "0ad04412-c4d5-4796-b79c-f76d14c8d402";

    private readonly ArmTemplate template;

    public TemplateContentTests(CompiledInfra compiled) => template = compiled.RequireTemplate();

    [Fact]
    public void StorageAccountDisablesSharedKeysAndPublicBlobAccess()
    {
        var account = template.Single("Microsoft.Storage/storageAccounts").Properties;
        Assert.False(account["allowSharedKeyAccess"]!.GetValue<bool>(), "shared-key access must be off");
        Assert.False(account["allowBlobPublicAccess"]!.GetValue<bool>(), "anonymous blob access must be off");
        Assert.True(account["defaultToOAuthAuthentication"]!.GetValue<bool>());
        Assert.Equal("TLS1_2", (string?)account["minimumTlsVersion"]);
        Assert.True(account["supportsHttpsTrafficOnly"]!.GetValue<bool>());
    }

    [Fact]
    public void StorageAccountHasTheFourServiceContainersAllPrivate()
    {
        var containers = template.Single("Microsoft.Storage/storageAccounts/blobServices/containers");
        var nameArgument = ArmTemplate.Arguments(containers.Name, "format")[^1];
        var names = ArmTemplate.Resolve(containers.Template, nameArgument).Select(n => (string?)n).ToList();
        Assert.Equal(["runs", "uploads", "quantized", "rejected"], names);
        Assert.Equal("None", (string?)containers.Properties["publicAccess"]);
    }

    [Fact]
    public void ManagedIdentityGetsBlobQueueAndTableDataRolesOnTheStorageAccount()
    {
        var granted = RoleGrantsToAppIdentity();
        foreach (var role in new[] { StorageBlobDataContributor, StorageQueueDataContributor,
                     StorageTableDataContributor })
        {
            Assert.True(granted.Any(g => g.Role == role && g.Scope.Contains("Microsoft.Storage/storageAccounts")),
                $"no assignment of role {role} on the storage account to the app identity; found: " +
                string.Join("; ", granted));
        }
    }

    [Fact]
    public void NoIdentityHoldsStorageBlobDataOwner()
    {
        // Owner adds only ACL and ownership changes (hierarchical namespace, not used here) to what Contributor allows.
        foreach (var assignment in template.OfType("Microsoft.Authorization/roleAssignments"))
        {
            var definition = (string)assignment.Properties["roleDefinitionId"]!;
            var argument = ArmTemplate.Arguments(definition, "subscriptionResourceId")[^1];
            Assert.DoesNotContain(ArmTemplate.Resolve(assignment.Template, argument), r => (string?)r == StorageBlobDataOwner);
        }
        var account = template.Single("Microsoft.Storage/storageAccounts").Properties;
        Assert.NotEqual(true, account["isHnsEnabled"]?.GetValue<bool>());
    }

    [Fact]
    public void StorageFirewallRulesAndPrivateEndpointsAreParametersThatDefaultToTheOpenNetwork()
    {
        var account = template.Single("Microsoft.Storage/storageAccounts");
        var storage = account.Deployment!;
        var acls = account.Properties["networkAcls"]!.AsObject();
        Assert.Equal("[parameters('networkDefaultAction')]", (string?)acls["defaultAction"]);
        Assert.Equal("AzureServices", (string?)acls["bypass"]);
        var loops = acls["copy"]!.AsArray().OfType<JsonObject>().ToDictionary(c => (string)c["name"]!);
        Assert.Equal("[length(parameters('allowedIpRanges'))]", (string?)loops["ipRules"]["count"]);
        Assert.Equal("[length(parameters('allowedSubnetIds'))]", (string?)loops["virtualNetworkRules"]["count"]);
        Assert.Equal("[parameters('publicNetworkAccess')]", (string?)account.Properties["publicNetworkAccess"]);

        // main.bicep passes its own parameters through, and their defaults keep today's open network.
        var parameters = template.Root["parameters"]!;
        foreach (var (inMain, inModule) in new[]
                 {
                     ("storageNetworkDefaultAction", "networkDefaultAction"), ("storageAllowedIpRanges", "allowedIpRanges"),
                     ("storageAllowedSubnetIds", "allowedSubnetIds"),
                     ("storagePrivateEndpointSubnetId", "privateEndpointSubnetId"),
                     ("storagePublicNetworkAccess", "publicNetworkAccess"),
                 })
            Assert.Equal($"[parameters('{inMain}')]", ArmTemplate.ModuleParameter(storage, inModule));
        Assert.Equal("Allow", (string?)parameters["storageNetworkDefaultAction"]!["defaultValue"]);
        Assert.Equal(["Allow", "Deny"],
            parameters["storageNetworkDefaultAction"]!["allowedValues"]!.AsArray().Select(v => (string?)v));
        Assert.Equal("Enabled", (string?)parameters["storagePublicNetworkAccess"]!["defaultValue"]);

        // A private endpoint per service the host uses, only when a subnet is given, with DNS zones beside them.
        var endpoints = template.Single("Microsoft.Network/privateEndpoints");
        var services = ArmTemplate.Resolve(endpoints.Template, "variables('privateServices')").Single()!.ToString();
        Assert.Equal("[if(empty(parameters('privateEndpointSubnetId')), createArray(), " +
                     "createArray('blob', 'queue', 'table'))]", services);
        Assert.Equal("[parameters('privateEndpointSubnetId')]", (string?)endpoints.Properties["subnet"]!["id"]);
        Assert.Single(template.OfType("Microsoft.Network/privateDnsZones"));
        Assert.Single(template.OfType("Microsoft.Network/privateEndpoints/privateDnsZoneGroups"));

        // The app can be put into a subnet that the firewall allows or that reaches the private endpoints.
        var environment = template.Single("Microsoft.App/managedEnvironments");
        Assert.Contains("parameters('infrastructureSubnetId')",
            environment.Properties["vnetConfiguration"]!.ToString());
        Assert.Equal("[parameters('environmentSubnetId')]",
            ArmTemplate.ModuleParameter(environment.Deployment!, "infrastructureSubnetId"));
    }

    [Fact]
    public void LifecycleRulesDeleteUploadsAndRejectedUploadsAfterTheRetentionDaysGiven()
    {
        var policy = template.Single("Microsoft.Storage/storageAccounts/managementPolicies");
        Assert.EndsWith("'default')]", policy.Name);
        var rules = policy.Properties["policy"]!["rules"]!.AsArray().OfType<JsonObject>().ToList();
        foreach (var (prefix, parameter, mainParameter, days) in new[]
                 {
                     ("uploads/", "uploadsRetentionDays", "uploadsRetentionDays", 14),
                     ("rejected/", "rejectedRetentionDays", "rejectedRetentionDays", 30),
                 })
        {
            var rule = Assert.Single(rules, r =>
                r["definition"]!["filters"]!["prefixMatch"]!.AsArray().Select(p => (string?)p).SequenceEqual([prefix]));
            Assert.True(rule["enabled"]!.GetValue<bool>());
            Assert.Equal($"[parameters('{parameter}')]",
                (string?)rule["definition"]!["actions"]!["baseBlob"]!["delete"]!["daysAfterModificationGreaterThan"]);
            Assert.Equal($"[parameters('{mainParameter}')]", ArmTemplate.ModuleParameter(policy.Deployment!, parameter));
            var declared = template.Root["parameters"]![mainParameter]!;
            Assert.Equal(days, (int)declared["defaultValue"]!);
            Assert.Equal(1, (int)declared["minValue"]!);
        }
        // Results are kept: no rule touches runs/ or quantized/.
        Assert.Equal(2, rules.Count);
    }

    [Fact]
    public void ManagedIdentityGetsAcrPullMetricsPublisherAndDurableTaskRolesOnTheirResources()
    {
        var granted = RoleGrantsToAppIdentity();
        Assert.Contains(granted, g => g.Role == AcrPull && g.Scope.Contains("Microsoft.ContainerRegistry/registries"));
        Assert.Contains(granted,
            g => g.Role == MonitoringMetricsPublisher && g.Scope.Contains("Microsoft.Insights/components"));
        Assert.Contains(granted,
            g => g.Role == DurableTaskDataContributor && g.Scope.Contains("Microsoft.DurableTask/schedulers"));
    }

    [Fact]
    public void RoleAssignmentsGoToTheUserAssignedIdentityCreatedByTheTemplate()
    {
        var identity = template.Single("Microsoft.ManagedIdentity/userAssignedIdentities");
        Assert.Null(identity.Deployment); // declared in main.bicep itself
        var roles = template.Module("roles");
        var principal = ArmTemplate.ModuleParameter(roles, "principalId");
        Assert.Contains("Microsoft.ManagedIdentity/userAssignedIdentities", principal);
        Assert.EndsWith(".principalId]", principal);
    }

    [Fact]
    public void EnvironmentHasAConsumptionProfileAndAGpuProfileWhoseTypeIsTheParameter()
    {
        var gpuTypes = template.Root["parameters"]!["gpuProfileType"]!["allowedValues"]!.AsArray()
            .Select(v => (string?)v).ToList();
        Assert.Equal(["Consumption-GPU-NC8as-T4", "Consumption-GPU-NC24-A100"], gpuTypes);

        var environment = template.Single("Microsoft.App/managedEnvironments");
        var profiles = environment.Properties["workloadProfiles"]!.AsArray().OfType<JsonObject>().ToList();
        Assert.Contains(profiles, p => (string?)p["workloadProfileType"] == "Consumption");
        var gpu = Assert.Single(profiles, p => (string?)p["workloadProfileType"] == "[parameters('gpuProfileType')]");
        Assert.Equal("[parameters('gpuProfileName')]", (string?)gpu["name"]);
        Assert.Equal("[parameters('gpuProfileType')]",
            ArmTemplate.ModuleParameter(environment.Deployment!, "gpuProfileType"));
        // Logs through a diagnostic setting, not the workspace's shared key.
        Assert.Equal("azure-monitor", (string?)environment.Properties["appLogsConfiguration"]!["destination"]);
    }

    [Fact]
    public void FunctionAppIsANativeContainerAppPinnedToTheGpuProfile()
    {
        var app = template.Single("Microsoft.App/containerApps");
        Assert.Equal("functionapp", (string?)app.Resource["kind"]);
        Assert.Equal("[parameters('gpuProfileName')]", (string?)app.Properties["workloadProfileName"]);
        // ... and that parameter is the environment's GPU profile name, passed through its module output.
        var passed = ArmTemplate.ModuleParameter(app.Deployment!, "gpuProfileName");
        Assert.Contains("'environment'", passed);
        Assert.EndsWith(".outputs.gpuProfileName.value]", passed);
        var environment = template.Single("Microsoft.App/managedEnvironments");
        Assert.Equal("[parameters('gpuProfileName')]",
            (string?)environment.Template["outputs"]!["gpuProfileName"]!["value"]);
    }

    [Fact]
    public void FunctionAppPullsItsImageWithTheManagedIdentityAndHoldsNoSecrets()
    {
        var app = template.Single("Microsoft.App/containerApps");
        var registry = Assert.Single(app.Properties["configuration"]!["registries"]!.AsArray());
        Assert.Equal("[parameters('identityId')]", (string?)registry!["identity"]);
        Assert.Null(registry["passwordSecretRef"]);
        Assert.Null(app.Properties["configuration"]!["secrets"]);
        Assert.Equal("UserAssigned", (string?)app.Resource["identity"]!["type"]);
    }

    [Fact]
    public void FunctionAppUsesIdentityBasedStorageAndTheServiceSettings()
    {
        var settings = AppSettings();
        Assert.Equal("managedidentity", settings["AzureWebJobsStorage__credential"]);
        Assert.Equal("[parameters('storageAccountName')]", settings["AzureWebJobsStorage__accountName"]);
        Assert.Equal("[parameters('identityClientId')]", settings["AzureWebJobsStorage__clientId"]);
        Assert.False(settings.ContainsKey("AzureWebJobsStorage"), "no AzureWebJobsStorage connection string");
        Assert.Equal("dotnet-isolated", settings["FUNCTIONS_WORKER_RUNTIME"]);
        Assert.Equal("[parameters('artifactBlobEndpoint')]", settings["ScaleGrow__ArtifactAccountUrl"]);
        Assert.Equal("[parameters('identityClientId')]", settings["ScaleGrow__ManagedIdentityClientId"]);
        Assert.Equal("[parameters('taskHubName')]", settings["ScaleGrow__TaskHub"]);
        Assert.StartsWith("[format('Authorization=AAD;ClientId={0}'",
            settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]);
        // The client ID handed to the app is the template's own user-assigned identity.
        var app = template.Single("Microsoft.App/containerApps");
        Assert.Contains("Microsoft.ManagedIdentity/userAssignedIdentities",
            ArmTemplate.ModuleParameter(app.Deployment!, "identityClientId"));
    }

    [Fact]
    public void AzureStorageBackendNeverScalesTheAppToZero()
    {
        // Container Apps cannot scale a Durable Functions app on the Azure Storage backend; with zero replicas the
        // task hub would never be polled again.
        var effective = (string?)template.Root["variables"]!["effectiveMinReplicas"];
        Assert.Equal("[if(variables('useScheduler'), parameters('minReplicas'), max(parameters('minReplicas'), 1))]",
            effective);
        Assert.Equal("[variables('effectiveMinReplicas')]",
            ArmTemplate.ModuleParameter(template.Module("function-app"), "minReplicas"));
        Assert.Equal("AzureStorage", (string?)template.Root["parameters"]!["durableBackend"]!["defaultValue"]);
    }

    [Fact]
    public void NoSettingOutputOrParameterCarriesAKeyOrSecureValue()
    {
        var json = template.Root.ToJsonString();
        // Property names are matched with their quotes: "allowSharedKeyAccess": false is wanted, "sharedKey" is not.
        foreach (var forbidden in new[] { "AccountKey=", "listKeys", "SharedAccessSignature", "\"sharedKey\"",
                     "\"secretRef\"", "\"passwordSecretRef\"", "securestring", "secureObject", "listSecrets",
                     "listCredentials" })
        {
            Assert.False(json.Contains(forbidden, StringComparison.OrdinalIgnoreCase),
                $"the compiled template contains '{forbidden}'");
        }

        foreach (var (name, value) in AppSettings())
        {
            Assert.DoesNotContain("AccountKey", value, StringComparison.OrdinalIgnoreCase);
            Assert.False(name.Contains("KEY", StringComparison.OrdinalIgnoreCase)
                         || name.Contains("SECRET", StringComparison.OrdinalIgnoreCase)
                         || name.Contains("PASSWORD", StringComparison.OrdinalIgnoreCase),
                $"app setting {name} looks like a secret");
        }
    }

    private Dictionary<string, string> AppSettings()
    {
        var app = template.Single("Microsoft.App/containerApps");
        var container = Assert.Single(app.Properties["template"]!["containers"]!.AsArray());
        var env = (string?)container!["env"] ?? throw new InvalidOperationException("env is not an expression");
        var settings = new Dictionary<string, string>();
        foreach (var part in ArmTemplate.Arguments(env, "concat"))
        {
            foreach (var value in ArmTemplate.Resolve(app.Template, part))
            {
                // The scheduler settings are an if(...) expression: checked as text, they name no secret either.
                if (value is not JsonArray list)
                {
                    var text = value?.ToString() ?? "";
                    Assert.DoesNotContain("AccountKey", text, StringComparison.OrdinalIgnoreCase);
                    Assert.DoesNotContain("listKeys", text, StringComparison.OrdinalIgnoreCase);
                    continue;
                }
                foreach (var setting in list.OfType<JsonObject>())
                    settings.Add((string)setting["name"]!, setting["value"]?.ToString() ?? "");
            }
        }
        Assert.NotEmpty(settings);
        return settings;
    }

    private sealed record RoleGrant(string Role, string Scope)
    {
        public override string ToString() => $"{Role} on {Scope}";
    }

    // Every role assignment in the roles module whose principal is the module's principalId parameter (the app
    // identity, see RoleAssignmentsGoToTheUserAssignedIdentityCreatedByTheTemplate), one entry per role.
    private List<RoleGrant> RoleGrantsToAppIdentity()
    {
        var grants = new List<RoleGrant>();
        foreach (var assignment in template.OfType("Microsoft.Authorization/roleAssignments"))
        {
            if ((string?)assignment.Properties["principalId"] != "[parameters('principalId')]") continue;
            Assert.Equal("ServicePrincipal", (string?)assignment.Properties["principalType"]);
            var definition = (string)assignment.Properties["roleDefinitionId"]!;
            var argument = ArmTemplate.Arguments(definition, "subscriptionResourceId")[^1];
            foreach (var role in ArmTemplate.Resolve(assignment.Template, argument))
                grants.Add(new RoleGrant((string)role!, (string?)assignment.Resource["scope"] ?? ""));
        }
        return grants;
    }
}
