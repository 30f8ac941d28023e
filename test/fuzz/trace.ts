export function checkTraceText(_t: string): null { return null; }
