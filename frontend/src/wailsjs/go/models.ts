export namespace config {
	
	export class FieldError {
	    field: string;
	    message: string;
	
	    static createFrom(source: any = {}) {
	        return new FieldError(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.field = source["field"];
	        this.message = source["message"];
	    }
	}
	export class Limits {
	    maxCPUs: number;
	    maxMemoryMiB: number;
	    drivers: string[];
	
	    static createFrom(source: any = {}) {
	        return new Limits(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.maxCPUs = source["maxCPUs"];
	        this.maxMemoryMiB = source["maxMemoryMiB"];
	        this.drivers = source["drivers"];
	    }
	}
	export class Settings {
	    cpus: number;
	    memoryMiB: number;
	    diskGiB: number;
	    driver: string;
	    sharedFolders: string[];
	    startAtLogin: boolean;
	    insecureRegistries: string[];
	    registryMirrors: string[];
	    containerLogMiB: number;
	    httpProxy: string;
	    httpsProxy: string;
	    noProxy: string;
	
	    static createFrom(source: any = {}) {
	        return new Settings(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.cpus = source["cpus"];
	        this.memoryMiB = source["memoryMiB"];
	        this.diskGiB = source["diskGiB"];
	        this.driver = source["driver"];
	        this.sharedFolders = source["sharedFolders"];
	        this.startAtLogin = source["startAtLogin"];
	        this.insecureRegistries = source["insecureRegistries"];
	        this.registryMirrors = source["registryMirrors"];
	        this.containerLogMiB = source["containerLogMiB"];
	        this.httpProxy = source["httpProxy"];
	        this.httpsProxy = source["httpsProxy"];
	        this.noProxy = source["noProxy"];
	    }
	}

}

export namespace desktop {
	
	export class ActionResult {
	    id: string;
	    error?: string;
	
	    static createFrom(source: any = {}) {
	        return new ActionResult(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.id = source["id"];
	        this.error = source["error"];
	    }
	}
	export class Port {
	    proto: string;
	    containerPort: number;
	    hostIP?: string;
	    hostPort?: number;
	    url?: string;
	
	    static createFrom(source: any = {}) {
	        return new Port(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.proto = source["proto"];
	        this.containerPort = source["containerPort"];
	        this.hostIP = source["hostIP"];
	        this.hostPort = source["hostPort"];
	        this.url = source["url"];
	    }
	}
	export class Container {
	    id: string;
	    name: string;
	    image: string;
	    command: string;
	    created: number;
	    state: string;
	    status: string;
	    ports: Port[];
	    labels: Record<string, string>;
	
	    static createFrom(source: any = {}) {
	        return new Container(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.id = source["id"];
	        this.name = source["name"];
	        this.image = source["image"];
	        this.command = source["command"];
	        this.created = source["created"];
	        this.state = source["state"];
	        this.status = source["status"];
	        this.ports = this.convertValues(source["ports"], Port);
	        this.labels = source["labels"];
	    }
	
		convertValues(a: any, classs: any, asMap: boolean = false): any {
		    if (!a) {
		        return a;
		    }
		    if (a.slice && a.map) {
		        return (a as any[]).map(elem => this.convertValues(elem, classs));
		    } else if ("object" === typeof a) {
		        if (asMap) {
		            for (const key of Object.keys(a)) {
		                a[key] = new classs(a[key]);
		            }
		            return a;
		        }
		        return new classs(a);
		    }
		    return a;
		}
	}
	export class Diagnostics {
	    home: string;
	    dockerHost: string;
	    hostdSocket: string;
	    hostd: boolean;
	    logsDir: string;
	    engine: string;
	
	    static createFrom(source: any = {}) {
	        return new Diagnostics(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.home = source["home"];
	        this.dockerHost = source["dockerHost"];
	        this.hostdSocket = source["hostdSocket"];
	        this.hostd = source["hostd"];
	        this.logsDir = source["logsDir"];
	        this.engine = source["engine"];
	    }
	}
	export class EngineInfo {
	    answering: boolean;
	    version: string;
	    apiVersion: string;
	    os: string;
	    arch: string;
	    kernel: string;
	    cpus: number;
	    memTotal: number;
	    containers: number;
	    containersRunning: number;
	    images: number;
	
	    static createFrom(source: any = {}) {
	        return new EngineInfo(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.answering = source["answering"];
	        this.version = source["version"];
	        this.apiVersion = source["apiVersion"];
	        this.os = source["os"];
	        this.arch = source["arch"];
	        this.kernel = source["kernel"];
	        this.cpus = source["cpus"];
	        this.memTotal = source["memTotal"];
	        this.containers = source["containers"];
	        this.containersRunning = source["containersRunning"];
	        this.images = source["images"];
	    }
	}
	export class Image {
	    id: string;
	    tags: string[];
	    size: number;
	    created: number;
	    containers: number;
	
	    static createFrom(source: any = {}) {
	        return new Image(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.id = source["id"];
	        this.tags = source["tags"];
	        this.size = source["size"];
	        this.created = source["created"];
	        this.containers = source["containers"];
	    }
	}
	export class MachineStatus {
	    status: hostapi.Status;
	    hostd: boolean;
	    external: boolean;
	    engine: EngineInfo;
	
	    static createFrom(source: any = {}) {
	        return new MachineStatus(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.status = this.convertValues(source["status"], hostapi.Status);
	        this.hostd = source["hostd"];
	        this.external = source["external"];
	        this.engine = this.convertValues(source["engine"], EngineInfo);
	    }
	
		convertValues(a: any, classs: any, asMap: boolean = false): any {
		    if (!a) {
		        return a;
		    }
		    if (a.slice && a.map) {
		        return (a as any[]).map(elem => this.convertValues(elem, classs));
		    } else if ("object" === typeof a) {
		        if (asMap) {
		            for (const key of Object.keys(a)) {
		                a[key] = new classs(a[key]);
		            }
		            return a;
		        }
		        return new classs(a);
		    }
		    return a;
		}
	}
	
	export class RunRequest {
	    image: string;
	    name: string;
	    ports: string[];
	    env: string[];
	    volumes: string[];
	    command: string;
	    restart: string;
	    autoRemove: boolean;
	
	    static createFrom(source: any = {}) {
	        return new RunRequest(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.image = source["image"];
	        this.name = source["name"];
	        this.ports = source["ports"];
	        this.env = source["env"];
	        this.volumes = source["volumes"];
	        this.command = source["command"];
	        this.restart = source["restart"];
	        this.autoRemove = source["autoRemove"];
	    }
	}
	export class RunResult {
	    id?: string;
	    fields?: config.FieldError[];
	
	    static createFrom(source: any = {}) {
	        return new RunResult(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.id = source["id"];
	        this.fields = this.convertValues(source["fields"], config.FieldError);
	    }
	
		convertValues(a: any, classs: any, asMap: boolean = false): any {
		    if (!a) {
		        return a;
		    }
		    if (a.slice && a.map) {
		        return (a as any[]).map(elem => this.convertValues(elem, classs));
		    } else if ("object" === typeof a) {
		        if (asMap) {
		            for (const key of Object.keys(a)) {
		                a[key] = new classs(a[key]);
		            }
		            return a;
		        }
		        return new classs(a);
		    }
		    return a;
		}
	}
	export class SettingsView {
	    settings: config.Settings;
	    limits: config.Limits;
	    restartRequired: boolean;
	    hostd: boolean;
	    path: string;
	
	    static createFrom(source: any = {}) {
	        return new SettingsView(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.settings = this.convertValues(source["settings"], config.Settings);
	        this.limits = this.convertValues(source["limits"], config.Limits);
	        this.restartRequired = source["restartRequired"];
	        this.hostd = source["hostd"];
	        this.path = source["path"];
	    }
	
		convertValues(a: any, classs: any, asMap: boolean = false): any {
		    if (!a) {
		        return a;
		    }
		    if (a.slice && a.map) {
		        return (a as any[]).map(elem => this.convertValues(elem, classs));
		    } else if ("object" === typeof a) {
		        if (asMap) {
		            for (const key of Object.keys(a)) {
		                a[key] = new classs(a[key]);
		            }
		            return a;
		        }
		        return new classs(a);
		    }
		    return a;
		}
	}
	export class SaveResult {
	    view: SettingsView;
	    fields?: config.FieldError[];
	
	    static createFrom(source: any = {}) {
	        return new SaveResult(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.view = this.convertValues(source["view"], SettingsView);
	        this.fields = this.convertValues(source["fields"], config.FieldError);
	    }
	
		convertValues(a: any, classs: any, asMap: boolean = false): any {
		    if (!a) {
		        return a;
		    }
		    if (a.slice && a.map) {
		        return (a as any[]).map(elem => this.convertValues(elem, classs));
		    } else if ("object" === typeof a) {
		        if (asMap) {
		            for (const key of Object.keys(a)) {
		                a[key] = new classs(a[key]);
		            }
		            return a;
		        }
		        return new classs(a);
		    }
		    return a;
		}
	}
	
	export class Volume {
	    name: string;
	    driver: string;
	    mountpoint: string;
	    createdAt: string;
	    labels: Record<string, string>;
	
	    static createFrom(source: any = {}) {
	        return new Volume(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.name = source["name"];
	        this.driver = source["driver"];
	        this.mountpoint = source["mountpoint"];
	        this.createdAt = source["createdAt"];
	        this.labels = source["labels"];
	    }
	}

}

export namespace hostapi {
	
	export class BootPhase {
	    name: string;
	    label: string;
	    startMs: number;
	    endMs: number;
	    running?: boolean;
	
	    static createFrom(source: any = {}) {
	        return new BootPhase(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.name = source["name"];
	        this.label = source["label"];
	        this.startMs = source["startMs"];
	        this.endMs = source["endMs"];
	        this.running = source["running"];
	    }
	}
	export class ForwardedPort {
	    container: string;
	    proto: string;
	    hostIP: string;
	    hostPort: number;
	    guestPort: number;
	
	    static createFrom(source: any = {}) {
	        return new ForwardedPort(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.container = source["container"];
	        this.proto = source["proto"];
	        this.hostIP = source["hostIP"];
	        this.hostPort = source["hostPort"];
	        this.guestPort = source["guestPort"];
	    }
	}
	export class Status {
	    state: string;
	    driver: string;
	    accel?: string;
	    cpus: number;
	    memoryMiB: number;
	    diskGiB: number;
	    diskUsedBytes?: number;
	    dockerHost: string;
	    engineVersion?: string;
	    hostdVersion: string;
	    // Go type: time
	    startedAt: any;
	    restarts: number;
	    machinePID?: number;
	    kernel?: string;
	    agentVersion?: string;
	    error?: string;
	    ports?: ForwardedPort[];
	    boot?: BootPhase[];
	
	    static createFrom(source: any = {}) {
	        return new Status(source);
	    }
	
	    constructor(source: any = {}) {
	        if ('string' === typeof source) source = JSON.parse(source);
	        this.state = source["state"];
	        this.driver = source["driver"];
	        this.accel = source["accel"];
	        this.cpus = source["cpus"];
	        this.memoryMiB = source["memoryMiB"];
	        this.diskGiB = source["diskGiB"];
	        this.diskUsedBytes = source["diskUsedBytes"];
	        this.dockerHost = source["dockerHost"];
	        this.engineVersion = source["engineVersion"];
	        this.hostdVersion = source["hostdVersion"];
	        this.startedAt = this.convertValues(source["startedAt"], null);
	        this.restarts = source["restarts"];
	        this.machinePID = source["machinePID"];
	        this.kernel = source["kernel"];
	        this.agentVersion = source["agentVersion"];
	        this.error = source["error"];
	        this.ports = this.convertValues(source["ports"], ForwardedPort);
	        this.boot = this.convertValues(source["boot"], BootPhase);
	    }
	
		convertValues(a: any, classs: any, asMap: boolean = false): any {
		    if (!a) {
		        return a;
		    }
		    if (a.slice && a.map) {
		        return (a as any[]).map(elem => this.convertValues(elem, classs));
		    } else if ("object" === typeof a) {
		        if (asMap) {
		            for (const key of Object.keys(a)) {
		                a[key] = new classs(a[key]);
		            }
		            return a;
		        }
		        return new classs(a);
		    }
		    return a;
		}
	}

}

