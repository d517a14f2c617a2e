// A block whose value is undefined fails with the reference's ValidationError (the Node
// runner applies the same rule), even after its timers ran.
let ran = false;
setTimeout(() => {
  ran = true;
}, 5);
return undefined;
